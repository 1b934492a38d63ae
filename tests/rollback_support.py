"""Shared pieces of the rollback tests: the reverse transform, a migration that records a
rollback point at its cut-over, the exact expected final state, and a rollback process that
SIGKILLs itself (``python -m tests.rollback_support run CONFIG``)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings
from esmigrate.migrate import BlueGreen, MigrationResult
from esmigrate.rollback import rollback, rollback_point_hook
from tests.migrate_support import PAINLESS, TARGET_MAPPING, transform

REVERSE_PAINLESS = (
    "if (ctx._source.containsKey('content')) { ctx._source.body = ctx._source.remove('content'); }\n"
    "if (ctx._source.code instanceof String && ctx._source.code.startsWith('c')) "
    "{ ctx._source.code = Long.parseLong(ctx._source.code.substring(1)); }\n"
    "ctx._source.remove('n2');"
)


def reverse(doc: dict[str, Any]) -> dict[str, Any]:
    """The downgrade of :func:`tests.migrate_support.transform` (also accepts old-format docs,
    which writers keep sending after the cut-over)."""
    if "content" in doc:
        doc["body"] = doc.pop("content")
    code = doc.get("code")
    if isinstance(code, str) and code.startswith("c"):
        doc["code"] = int(code[1:])
    doc.pop("n2", None)
    return doc


def migrate_with_point(
    cluster: Cluster, prefix: str, alias: str, point: str, *, script: bool = False
) -> MigrationResult:
    return BlueGreen(
        cluster,
        alias,
        TARGET_MAPPING,
        settings={"number_of_replicas": 0},
        transform=None if script else transform,
        script=PAINLESS if script else None,
        state_index=f"{prefix}-hist",
        dead_letter_index=f"{prefix}-dl",
        on_cut_over=rollback_point_hook(cluster, point, state_index=f"{prefix}-hist"),
    ).run()


def expected_old_format(
    initial: dict[str, dict[str, Any]], ops: list[dict[str, Any]], indices: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """Every acknowledged operation applied in order, wherever it landed: the logical state,
    in the old format (the writer writes old-format documents)."""
    model: dict[str, dict[str, Any] | None] = {k: dict(v) for k, v in initial.items()}
    for op in ops:
        if op["index"] is None or op["result"] == "not_found":
            continue
        assert op["index"] in indices, op
        doc_id = op["id"]
        if op["op"] == "index":
            model[doc_id] = dict(op["doc"])
        elif op["op"] == "update":
            current = model.get(doc_id)
            assert current is not None, op
            model[doc_id] = {**current, **op["doc"]}
        else:
            model[doc_id] = None
    return {k: v for k, v in model.items() if v is not None}


def run_main(config_path: str) -> None:
    """Roll back, SIGKILLing this process at the first progress event of phase ``kill_at``."""
    cfg = json.loads(Path(config_path).read_text())
    cluster = connect(ConnectionSettings(urls=(cfg["url"],)))

    def on_progress(event: Any) -> None:
        if event.phase == cfg["kill_at"]:
            os.kill(os.getpid(), signal.SIGKILL)

    rollback(
        cluster,
        cfg["point"],
        state_index=cfg["state_index"],
        reverse_transform=reverse,
        on_progress=on_progress,
    )
    sys.exit(3)  # the kill point was never reached


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run_main(sys.argv[2])
