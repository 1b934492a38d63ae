"""Old writers after a cut-over: the new index upgrades the documents they still send.

During a rolling deploy, instances of the application that still write the old document shape
keep writing through the alias after the swap, and their documents would land untransformed in the
new index. With ``upgrade_old_writes``, the cut-over installs an ingest pipeline
``esmigrate-upgrade-<new index>`` and makes it the new index's ``index.default_pipeline``. It runs
just before the write block (BlueGreen's ``before_block``), not under it: a write request resolves
its pipelines from the cluster state a moment before it resolves the alias, so a pipeline set
between the block and the swap could miss a write that straddled both; set before the block, such
a write would have to straddle the block, the final round and the swap. Its one
``script`` processor runs the migration's rule set (compiled for ingest) on the documents its
``if`` condition calls old (by the version field the rule set sets, or a condition given) and
leaves the others alone; the processor's own stats count the documents it upgraded, which is how
:func:`upgrade_pipelines` tells whether old writers are still about. :func:`remove_upgrade_pipelines` takes it off once every
writer is upgraded.

A rule that fails on a document refuses that write (the writer gets the engine's error naming the
rule) rather than storing it in the old shape.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from esmigrate.cluster import Cluster, PlannedRequest
from esmigrate.exceptions import MigrationError, NotFoundError
from esmigrate.migrate._layout import alias_targets
from esmigrate.schema.documents import VERSION_FIELD
from esmigrate.transform import Condition, Equals, Not, RuleSet, Set
from esmigrate.transform import painless as pl

PIPELINE_PREFIX = "esmigrate-upgrade-"
#: The processor's tag: its stats are found by it.
TAG = "esmigrate-upgrade-old-writes"


def pipeline_name(index: str) -> str:
    """The pipeline that upgrades old writes to ``index``."""
    return f"{PIPELINE_PREFIX}{index}"


@dataclass(frozen=True)
class OldWrites:
    """What upgrades old writers' documents at the new index: which documents are old (``old``,
    described; ``condition``, its Painless) and the rule set as an ingest script."""

    rules: str
    old: str
    condition: dict[str, Any]
    script: dict[str, Any]

    def pipeline(self, index: str) -> dict[str, Any]:
        return {
            "description": f"esmigrate: documents written to {index} in the old shape "
            f"({self.old}) are upgraded by {self.rules}",
            "processors": [{"script": {"tag": TAG, "if": self.condition, **self.script}}],
        }

    def requests(self, index: str) -> list[PlannedRequest]:
        """Install the pipeline and make it ``index``'s default (both idempotent: a rerun of a
        cut-over sends them again)."""
        name = pipeline_name(index)
        return [
            PlannedRequest("PUT", f"/_ingest/pipeline/{name}", body=self.pipeline(index)),
            PlannedRequest("PUT", f"/{index}/_settings", body={"index.default_pipeline": name}),
        ]

    def install(self, cluster: Cluster, index: str) -> None:
        """Install on ``index``."""
        for request in self.requests(index):
            request.send(cluster)

    def before_block(
        self, cluster: Cluster, then: Callable[[str], None] | None = None
    ) -> Callable[[str], None]:
        """BlueGreen's ``before_block`` hook: install on the target, then run ``then`` (a hook
        the caller gave) with it."""

        def hook(target: str) -> None:
            self.install(cluster, target)
            if then is not None:
                then(target)

        return hook


def _version_set(rules: RuleSet) -> Any:
    """The value a top-level rule sets the version field to, or None."""
    for rule in rules:
        if isinstance(rule, Set) and rule.path == (VERSION_FIELD,):
            return rule.value
    return None


def old_writes(transform: Any, old: bool | Condition) -> OldWrites:
    """The pipeline for ``transform`` and the documents ``old`` names (``True``: those whose
    version field is not the one the rule set sets).

    Raises :class:`~esmigrate.exceptions.MigrationError` when it cannot be built: no rule set, a
    rule with no Painless form, no version set and no condition given.
    """
    name = getattr(transform, "__qualname__", None) or type(transform).__name__
    if not isinstance(transform, RuleSet):
        raise MigrationError(
            "upgrade_old_writes needs the transformation as a RuleSet: the ingest pipeline runs "
            f"it as Painless, and {name} is "
            + ("missing." if transform is None else "Python, which no pipeline can run."),
            hint="Write the transformation as a RuleSet of rules that compile to Painless "
            "(esmigrate.transform), or leave out upgrade_old_writes and upgrade every writer "
            "before the cut-over.",
        )
    script = transform.painless_ingest()
    if script is None:
        python = [r.name for r in transform.walk() if r.compile(pl.Compiler()) is None]
        raise MigrationError(
            f"upgrade_old_writes: the rule set {transform.name or name} cannot run in an ingest "
            "pipeline: "
            + (
                f"rule(s) {', '.join(python)} have no Painless form."
                if python
                else "its Painless exceeds the engines' script size limit."
            ),
            hint="Replace those rules (Apply, Predicate conditions) by rules with a Painless "
            "form, or leave out upgrade_old_writes and upgrade every writer before the cut-over.",
        )
    if old is True:
        version = _version_set(transform)
        if version is None:
            raise MigrationError(
                f"upgrade_old_writes=True tells old documents by {VERSION_FIELD!r}, which the "
                f"rule set {transform.name or name} does not set.",
                hint=f'Add Set("{VERSION_FIELD}", "2.0.0") to the rule set, or pass the condition '
                'old documents meet: upgrade_old_writes=Missing("published_date").',
            )
        condition: Condition = Not(Equals(VERSION_FIELD, version))
    elif isinstance(old, Condition):
        condition = old
    else:
        raise MigrationError(
            f"upgrade_old_writes takes True or a Condition, not {old!r}.",
            hint="True: old documents are those whose schema_version the rule set would change; "
            'a Condition (e.g. Missing("published_date")) names them by their shape.',
        )
    c = pl.Compiler()
    test = condition.painless(c)
    if test is None:
        raise MigrationError(
            f"upgrade_old_writes: the condition {condition.describe()!r} has no Painless form.",
            hint="Build it from Exists, Missing, Equals, In, IsEmpty, Not, All and AnyOf.",
        )
    return OldWrites(
        rules=transform.name or name,
        old=condition.describe(),
        condition=pl.ingest_condition(test, c.params),
        script=script,
    )


def _upgraded(cluster: Cluster, pipeline: str) -> dict[str, int]:
    """Documents through ``pipeline`` and upgraded by it, summed over the nodes since they
    started (the engines keep no older count)."""
    stats = cluster.request("GET", "/_nodes/stats/ingest")
    through = upgraded = 0
    for node in stats.get("nodes", {}).values():
        entry = node.get("ingest", {}).get("pipelines", {}).get(pipeline)
        if not entry:
            continue
        through += int(entry.get("count", 0))
        for processor in entry.get("processors", []):
            for data in processor.values():
                upgraded += int(data.get("stats", {}).get("count", 0))
    return {"documents_through": through, "upgraded": upgraded}


def upgrade_pipelines(cluster: Cluster, alias: str | None = None) -> list[dict[str, Any]]:
    """The upgrade pipelines in place (``alias``: only on its indices): per index its pipeline,
    aliases, and the documents the pipeline saw and upgraded since the nodes started."""
    try:
        # Only the one setting: `status` calls this, and must not need more than reading it.
        settings = cluster.request("GET", f"/{alias or '_all'}/_settings/index.default_pipeline")
    except NotFoundError:
        return []
    out = []
    for index, entry in sorted(settings.items()):
        pipeline = entry.get("settings", {}).get("index", {}).get("default_pipeline")
        if not isinstance(pipeline, str) or not pipeline.startswith(PIPELINE_PREFIX):
            continue
        aliases = sorted(_aliases_of(cluster, index))
        out.append(
            {"index": index, "pipeline": pipeline, "aliases": aliases}
            | _upgraded(cluster, pipeline)
        )
    return out


def _aliases_of(cluster: Cluster, index: str) -> Mapping[str, Any]:
    return dict(cluster.request("GET", f"/{index}/_alias").get(index, {}).get("aliases", {}))


def remove_upgrade_pipelines(cluster: Cluster, alias: str) -> list[dict[str, Any]]:
    """Take the upgrade pipeline off the indices behind ``alias``: the index setting first (from
    then on writes go straight in), then the pipeline. Returns what was removed; raises
    :class:`~esmigrate.exceptions.MigrationError` when ``alias`` is no alias.
    """
    if not alias_targets(cluster, alias):
        raise MigrationError(
            f"{alias!r} is not an alias on {cluster.where}.",
            hint="Name the alias the migration moved (`esmigrate status` lists the upgrade "
            "pipelines in place).",
        )
    found = upgrade_pipelines(cluster, alias)
    for entry in found:
        cluster.request(
            "PUT", f"/{entry['index']}/_settings", body={"index.default_pipeline": None}
        )
        # Gone meanwhile is fine: the goal is reached.
        with contextlib.suppress(NotFoundError):
            cluster.request("DELETE", f"/_ingest/pipeline/{entry['pipeline']}")
    return found
