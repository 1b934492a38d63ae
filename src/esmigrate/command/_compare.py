"""``esmigrate compare A B [--transform MODULE:FN]``: are two indices (or aliases) the same data?

For teams that migrate by other means (a Logstash pipeline, a hand-made ``_reindex``) and want
the check esmigrate's own cut-over makes: the document counts, the mapping diff (A's mapping
to B's, each change classified), and a random sample of A's documents deep-compared with B's
documents of the same id, through ``transform`` when B holds A's documents transformed. It
only reads.
"""

from __future__ import annotations

import copy
from typing import Any

from esmigrate.command._base import open_cluster
from esmigrate.command._schema import load_transform
from esmigrate.config import Config
from esmigrate.exceptions import ConfigError
from esmigrate.migrate import sampled_differences
from esmigrate.schema.diff import diff_mappings

#: Sampled documents shown in the report (all are counted).
SHOWN = 20


def compare(
    config: Config, a: str, b: str, *, transform: str | None = None, sample_size: int = 500
) -> dict[str, Any]:
    """Compare index/alias ``a`` with ``b``; ``same`` is False when the counts, the mappings or
    a sampled document differ. ``transform`` (``module:attr``, a rule set or ``doc -> doc``)
    is what B should hold for each document of A."""
    fn = load_transform(config, transform) if transform else None
    if not 0 <= sample_size <= 10_000:
        raise ConfigError(
            f"Invalid sample size {sample_size}.", hint="Give 0 (no sample) to 10000 documents."
        )
    with open_cluster(config) as cluster:
        for name in (a, b):
            if not cluster.exists(name):
                raise ConfigError(
                    f"There is no index or alias {name!r} to compare.",
                    hint="Name two existing indices or aliases: esmigrate compare A B.",
                )
        cluster.refresh(a)
        cluster.refresh(b)
        counts = {"a": cluster.count(a), "b": cluster.count(b)}
        diff = diff_mappings(a, b, cluster=cluster)
        changes = [
            {
                "path": c.path or "(root)",
                "change": str(c.kind),
                "class": str(c.compatibility),
                "reason": c.reason,
            }
            for c in diff.changes
        ]

        def expected(sources: dict[str, dict[str, Any]]) -> dict[str, Any]:
            if fn is None:
                return sources
            return {i: fn(copy.deepcopy(doc)) for i, doc in sources.items()}

        differences = (
            sampled_differences(cluster, a, b, sample_size=sample_size, expected=expected)
            if sample_size and counts["a"]
            else []
        )
    sampled = min(sample_size, counts["a"])
    return {
        "a": a,
        "b": b,
        "transform": transform,
        "same": counts["a"] == counts["b"] and not changes and not differences,
        "counts": {**counts, "same": counts["a"] == counts["b"]},
        "mapping": {"same": not changes, "changes": changes},
        "sample": {
            "size": sampled,
            "different": len(differences),
            "differences": differences[:SHOWN],
        },
    }
