"""The index/alias layout esmigrate manages, and the checks made before anything is written.

A logical index ``posts`` is an alias (``is_write_index`` on the physical index that takes
writes) over versioned physical indices ``posts-v1-20250101120000``, ``posts-v2-...``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import (
    EsmigrateError,
    MigrationCancelled,
    MigrationError,
    NotFoundError,
    PreflightError,
    RequestError,
)
from esmigrate.preflight import check_health as preflight_health
from esmigrate.schema.diff import normalize_mapping
from esmigrate.schema.mapping import live_mapping

log = logging.getLogger("esmigrate.migrate")

#: A new index's settings while it is loaded; restored to what the migration asks after the copy.
#: Writes wait for the one copy there is: the engine refuses a ``wait_for_active_shards`` above
#: the number of copies, so the migration's own value would make the index impossible to create.
LOAD_SETTINGS = {
    "index.refresh_interval": "-1",
    "index.number_of_replicas": 0,
    "index.write.wait_for_active_shards": 1,
}

#: A scratch index of the engine's own (the validation's sample, the estimate's): one shard, no
#: replica, hidden from the application's wildcards (``posts-*``, ``*``) and its templates.
SCRATCH_SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0, "hidden": True}

#: How long a new index may take to get the copies its writes wait for (see
#: :func:`wait_for_write_copies`).
WRITE_COPIES_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class AliasLayout:
    """Where ``alias`` (and ``write_alias``) point now; ``source`` is the index taking writes."""

    alias: str
    write_alias: str
    source: str
    #: alias name -> its definition on ``source`` (filter, routing, is_write_index)
    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)


def alias_targets(cluster: Cluster, name: str) -> dict[str, dict[str, Any]]:
    """index -> alias definition for alias ``name``; {} when no such alias exists."""
    try:
        result = cluster.request("GET", f"/_alias/{name}")
    except NotFoundError:
        return {}
    return {index: entry["aliases"][name] for index, entry in result.items()}


def is_alias(cluster: Cluster, name: str) -> bool:
    return bool(alias_targets(cluster, name))


def resolve(cluster: Cluster, alias: str, write_alias: str | None = None) -> AliasLayout:
    """Find the index behind ``alias`` that takes writes; clear errors for other layouts."""
    write_alias = write_alias or alias
    targets = alias_targets(cluster, write_alias)
    if not targets:
        if cluster.exists(write_alias):
            raise PreflightError(
                f"{write_alias!r} is a concrete index, not an alias: esmigrate moves data between "
                "versioned indices behind an alias.",
                problem="not_an_alias",
                hint=f"Run `esmigrate adopt {write_alias}` once to put it behind an alias "
                "(a few seconds of write block; reads and writes keep using the same name).",
            )
        raise PreflightError(
            f"There is no index or alias called {write_alias!r} to migrate.",
            problem="source_missing",
            hint="Check the name (and the cluster URL), or create the index first.",
        )
    if len(targets) == 1:
        source = next(iter(targets))
    else:
        writers = [i for i, d in targets.items() if d.get("is_write_index")]
        if len(writers) != 1:
            raise PreflightError(
                f"The alias {write_alias!r} points to {len(targets)} indices "
                f"({', '.join(sorted(targets))}) and none is its write index.",
                problem="alias_ambiguous",
                hint="Mark the index that takes writes with is_write_index: true, or pass the "
                "write alias explicitly.",
            )
        source = writers[0]
    definitions = {write_alias: targets[source]}
    if alias != write_alias:
        read = alias_targets(cluster, alias)
        if source not in read:
            raise PreflightError(
                f"The read alias {alias!r} does not include {source!r}, the write index of "
                f"{write_alias!r}.",
                problem="alias_mismatch",
                hint="Point both aliases at the same index before migrating.",
            )
        definitions[alias] = read[source]
    return AliasLayout(alias, write_alias, source, definitions)


_VERSIONED = re.compile(r"^(?P<base>.+)-v(?P<n>\d+)(?:-\d+)?$")


def next_index_name(alias: str, source: str) -> str:
    """``{alias}-v{n+1}-{UTC timestamp}``, continuing the version number of ``source``."""
    match = _VERSIONED.match(source)
    n = int(match.group("n")) + 1 if match else 2
    return f"{alias}-v{n}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"


def check_health(cluster: Cluster, *indices: str) -> None:
    """Refuse to migrate ``indices`` while one of them is red (see
    :func:`esmigrate.preflight.check_health`: a red index elsewhere does not stop it)."""
    found = preflight_health(cluster, indices)
    if found.status == "fail":
        raise PreflightError(
            f"{cluster.where}: {found.detail}",
            problem="cluster_red",
            hint=found.hint,
        )


def contains(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Paths where ``expected`` is not contained in ``actual`` (dicts compared as subsets)."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [path or "/"]
        out: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{path}/{key}")
            else:
                out.extend(contains(actual[key], value, f"{path}/{key}"))
        return out
    if isinstance(expected, bool) or isinstance(actual, bool):
        return [] if str(actual).lower() == str(expected).lower() else [path]
    if isinstance(expected, (int, float)) and isinstance(actual, str):
        return [] if actual == str(expected) else [path]
    return [] if actual == expected else [path]


def mapping_missing(actual: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """Paths of ``expected`` that the live mapping ``actual`` lacks, both in the normal form of
    :func:`esmigrate.schema.diff.normalize_mapping` (so ``type: object``, which the server omits,
    and explicit defaults compare equal). Fields only ``actual`` has (dynamic ones) are fine."""
    return contains(normalize_mapping(dict(actual)), normalize_mapping(dict(expected)))


def check_copy_between(
    cluster: Cluster, source: str, target: str, mappings: Mapping[str, Any]
) -> bool:
    """Refuse, before anything is written, a copy from ``source`` into ``target`` that cannot
    work (the same index, a blocked source, a target with another mapping, a source without
    ``_source``). True when ``target`` exists already with the mapping: it is reused."""
    if target == source:
        raise PreflightError(
            f"The target {target!r} is the source index itself.",
            problem="target_is_source",
            hint="Choose another target name, or let esmigrate name it.",
        )
    blocked = write_block(cluster, source)
    if blocked is not None:
        lift = f'PUT {source}/_settings {{"index.blocks.write": null}}'
        raise PreflightError(
            f"{source} is write-blocked already ({blocked.get('description')}), by another "
            "process or an earlier failure outside esmigrate.",
            problem="source_blocked",
            hint=f"Find out who blocked it; if nobody should, lift it with {lift}"
            + (
                f" after PUT {source}/_block/write (a _block/write that failed left this "
                "block; only one that succeeds replaces it)."
                if _temporary(blocked)
                else "."
            ),
        )
    reuse = False
    if cluster.exists(target):
        differs = mapping_missing(live_mapping(cluster, target), mappings)
        if differs:
            raise PreflightError(
                f"The target index {target!r} already exists with another mapping "
                f"(differs at {', '.join(differs[:5])}).",
                problem="target_exists",
                hint="Delete it if it is a leftover, or choose another target name.",
            )
        reuse = True
    source_mapping = live_mapping(cluster, source)
    if str(source_mapping.get("_source", {}).get("enabled", True)).lower() == "false":
        raise PreflightError(
            f"{source} does not store _source, so its documents cannot be copied.",
            problem="source_disabled",
            hint="Documents without _source can only be re-created from their origin.",
        )
    return reuse


def write_copies(flat: Mapping[str, Any]) -> int:
    """How many active copies of each shard a write waits for on an index with the settings
    ``flat`` (dotted keys): ``index.write.wait_for_active_shards``, 1 unless set, ``all`` every
    copy (``number_of_replicas`` + 1, replicas 1 unless set). :class:`ValueError` for a value
    that is neither a whole number nor ``all``."""
    wanted = flat.get("index.write.wait_for_active_shards")
    if wanted is None:
        return 1
    if str(wanted).lower() == "all":
        return int(flat.get("index.number_of_replicas", 1)) + 1
    if isinstance(wanted, bool) or not str(wanted).strip().isdigit():
        raise ValueError(f"not a whole number or `all`: {wanted!r}")
    return int(wanted)


def check_write_copies(cluster: Cluster, index: str, flat: Mapping[str, Any]) -> None:
    """Refuse new-index settings whose writes would wait for copies of a shard that cannot
    exist: a value that is not a number or ``all``, more than the index has copies (the engine
    refuses that only once the replicas are restored, after the copy: the new index is loaded
    with one copy), or more than the cluster has data nodes (a node holds one copy of a shard
    at most, so each write would time out)."""
    wanted = flat.get("index.write.wait_for_active_shards")
    setting = f"index.write.wait_for_active_shards: {wanted}"
    try:
        needed = write_copies(flat)
    except ValueError:
        raise PreflightError(
            f"The migration's settings for {index} have {setting}, which is neither a whole "
            "number nor `all`.",
            problem="write_copies",
            hint="Give a number of copies (1 is the default) or `all`.",
        ) from None
    if needed <= 1:
        return
    copies = int(flat.get("index.number_of_replicas", 1)) + 1
    if needed > copies:
        raise PreflightError(
            f"The migration's settings for {index} have {setting}, but each of its shards has "
            f"{copies} copies (number_of_replicas: {copies - 1}).",
            problem="write_copies",
            hint="Ask for at most number_of_replicas + 1 copies, or `all`.",
        )
    nodes = int(cluster.health(timeout="5s")["number_of_data_nodes"])
    if needed > nodes:
        raise PreflightError(
            f"Writes to {index} would wait for {needed} active copies of each shard ({setting}"
            + (f", number_of_replicas: {needed - 1}" if str(wanted).lower() == "all" else "")
            + f"), but {cluster.where} has {nodes} data node(s), and a node holds one copy of a "
            "shard at most: every write to it would time out.",
            problem="write_copies",
            hint="Lower index.write.wait_for_active_shards (or number_of_replicas, for `all`) in "
            "the migration's settings, or add data nodes.",
        )


def wait_for_write_copies(
    cluster: Cluster,
    index: str,
    *,
    timeout_s: float | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Until every shard of ``index`` has the active copies its writes wait for
    (``index.write.wait_for_active_shards``). Without this each write would wait on its own, a
    minute, and fail; under a write block the application would wait with it.

    While copies are being built (initializing) it waits, however long a large index takes;
    once none is and the copies have stayed short for ``timeout_s``
    (:data:`WRITE_COPIES_TIMEOUT_S`), a :class:`MigrationError` names the shards short of them.
    ``cancel`` set: :class:`MigrationCancelled`."""
    answer = cluster.request(
        "GET",
        f"/{index}/_settings",
        params={
            "filter_path": "*.settings.index.number_of_replicas,"
            "*.settings.index.write.wait_for_active_shards"
        },
    )
    entry: dict[str, Any] = next(iter(answer.values()), {}) if answer else {}
    try:
        needed = write_copies(flatten_settings(entry.get("settings")))
    except ValueError:
        return  # the engine took it: its own check applies
    if needed <= 1:
        return
    limit = WRITE_COPIES_TIMEOUT_S if timeout_s is None else timeout_s
    stalled_since = time.monotonic()
    last: tuple[int, int] | None = None
    while True:
        health = cluster.request(
            "GET",
            f"/_cluster/health/{index}",
            params={
                "level": "shards",
                "filter_path": "indices.*.shards.*.active_shards,"
                "indices.*.shards.*.initializing_shards",
            },
        )
        shards = health["indices"][index]["shards"]
        short = sorted(
            (int(shard), int(row["active_shards"]))
            for shard, row in shards.items()
            if int(row["active_shards"]) < needed
        )
        if not short:
            return
        building = sum(int(row.get("initializing_shards") or 0) for row in shards.values())
        now = (sum(active for _, active in short), building)
        if building or now != last:
            stalled_since, last = time.monotonic(), now
        elif time.monotonic() - stalled_since >= limit:
            listed = ", ".join(f"{shard} ({active} active)" for shard, active in short)
            raise MigrationError(
                f"Writes to {index} wait for {needed} active copies of each shard "
                f"(index.write.wait_for_active_shards), but shard(s) {listed} have had fewer, "
                f"with none being built, for {limit:.0f}s: a node is missing, or the copies "
                "cannot be allocated.",
                hint="GET _cluster/allocation/explain says why a copy is not allocated. Once "
                "the copies are active, run the migration again: it resumes at the catch-up, "
                "with what it copied kept.",
            )
        if cancel is not None and cancel.wait(1.0):
            raise MigrationCancelled("The migration was cancelled.", hint="Run it again to resume.")
        if cancel is None:
            time.sleep(1.0)


#: The id the engines give the index write block (``index.blocks.write``, ``_block/write``).
WRITE_BLOCK = "8"


def write_block(cluster: Cluster, index: str) -> dict[str, Any] | None:
    """The write block the cluster state holds on ``index`` (``description``, ``levels``; a
    temporary one also has a ``uuid``), or None.

    Read from the cluster state, not the index settings: a ``_block/write`` that fails on a
    shard (a node that stalls, say) leaves the temporary block it started with (same id, a uuid
    of its own, "moving to block ..."), which refuses writes like the block itself while the
    setting, once lifted, says the index is not blocked.
    """
    state = cluster.request(
        "GET", "/_cluster/state/blocks", params={"filter_path": "blocks.indices"}
    )
    blocks = ((state.get("blocks") or {}).get("indices") or {}).get(index) or {}
    found = blocks.get(WRITE_BLOCK)
    return found if isinstance(found, dict) else None


def is_write_blocked(cluster: Cluster, index: str) -> bool:
    """Whether writes to ``index`` are refused by a write block (see :func:`write_block`)."""
    return write_block(cluster, index) is not None


def block_writes(
    cluster: Cluster, index: str, *, error: type[EsmigrateError] = MigrationError
) -> None:
    """Add a write block and wait until in-flight writes have drained (``_block/write``).

    Raises ``error`` when the answer reports the block failed on the index: what runs under it
    (a final round, counts of the source, a clone) holds only if no write lands. The engine
    leaves its temporary block then: :func:`lift_write_block` removes it.
    """
    response = cluster.request("PUT", f"/{index}/_block/write")
    unconfirmed = unconfirmed_blocks(response)
    if unconfirmed:
        raise error(
            f"The write block on {', '.join(unconfirmed)} failed on some shards "
            "(_block/write did not confirm it).",
            hint="Check the cluster's health (GET _cluster/health), then run again.",
        )


def unconfirmed_blocks(response: Mapping[str, Any]) -> list[str]:
    """The indices a ``_block/write`` answer does not confirm: each index it lists must say
    ``blocked: true`` (a failed one has ``failed_shards`` or an ``exception`` instead), and the
    request must be acknowledged. An index blocked already is not listed (and
    ``shards_acknowledged`` is then false): nothing to confirm."""
    listed = response.get("indices") or []
    failed = [str(r.get("name")) for r in listed if r.get("blocked") is not True]
    if not failed and response.get("acknowledged") is False:
        failed = [str(r.get("name")) for r in listed] or ["the index"]
    return failed


def lift_write_block(
    cluster: Cluster, index: str, *, error: type[EsmigrateError] = MigrationError
) -> None:
    """Let writes reach ``index`` again, and make sure they do.

    Lifting ``index.blocks.write`` removes the block a ``_block/write`` confirmed, not the
    temporary one a failed ``_block/write`` leaves (:func:`write_block`), which the engine
    replaces only when a ``_block/write`` succeeds: when one is left, this blocks once more
    and lifts again, and raises ``error`` if writes are still refused. A block without a uuid
    found after the lift was set by someone else since (a process that took the migration
    over): it is left alone.
    """
    _lift_setting(cluster, index)
    if not _temporary(write_block(cluster, index)):
        return
    log.warning("a failed _block/write left a write block on %s: blocking again to lift it", index)
    try:
        block_writes(cluster, index, error=error)
    finally:
        _lift_setting(cluster, index)
    left = write_block(cluster, index)
    if _temporary(left):
        raise error(
            f"Writes to {index} are still refused by a write block that a failed _block/write "
            f"left ({(left or {}).get('description')}); lifting index.blocks.write does not "
            "remove it.",
            hint=f"Once the cluster is healthy (GET _cluster/health), run PUT /{index}/_block/write "
            f'and then PUT /{index}/_settings {{"index.blocks.write": null}}: the engine '
            "replaces that block only when a _block/write succeeds.",
        )


def _temporary(block: Mapping[str, Any] | None) -> bool:
    return block is not None and bool(block.get("uuid"))


def _lift_setting(cluster: Cluster, index: str) -> None:
    cluster.request("PUT", f"/{index}/_settings", body={"index.blocks.write": None})


def clone_index(cluster: Cluster, source: str, clone: str) -> None:
    """``_clone`` the write-blocked ``source`` to ``clone`` (hard links: seconds, whatever the
    size) unless it exists, without the block, and wait until it is allocated."""
    if not cluster.exists(clone):
        cluster.request(
            "POST", f"/{source}/_clone/{clone}", body={"settings": {"index.blocks.write": None}}
        )
    cluster.health(clone, wait_for_status="yellow", timeout="120s")


def template_aliases(cluster: Cluster, index: str) -> list[str]:
    """Aliases an index template would give ``index`` if it were created now."""
    try:
        simulated = cluster.request("POST", f"/_index_template/_simulate_index/{index}")
    except (NotFoundError, RequestError):
        return []  # no composable templates (or an engine without the API): nothing added
    return sorted((simulated.get("template") or {}).get("aliases") or {})


def refuse_template_aliases(cluster: Cluster, indices: list[str]) -> None:
    """Refuse before anything is written when a template would put an alias on an index the
    migration creates: readers of that alias would see a half-copied index (or dead letters)."""
    for index in indices:
        if cluster.exists(index):
            continue
        aliases = template_aliases(cluster, index)
        if aliases:
            raise PreflightError(
                f"An index template gives {index!r} the alias(es) {', '.join(aliases)} when it is "
                "created: applications reading through them would see it before the cut-over.",
                problem="template_aliases",
                hint="Remove the aliases from the index templates matching that name (GET "
                "_index_template), or give the migration a target / dead_letter_index name they "
                "do not match; esmigrate moves the aliases itself at the cut-over.",
            )


def flatten_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Index settings as dotted keys: ``{"index": {"number_of_replicas": 1}}`` and
    ``{"number_of_replicas": 1}`` both give ``{"index.number_of_replicas": 1}``."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and not (
            prefix.endswith("analysis") or "analysis." in prefix
        ):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = value

    walk("", dict(settings or {}))
    fixed: dict[str, Any] = {}
    for key, value in out.items():
        fixed[key if key.startswith("index.") else f"index.{key}"] = value
    return fixed


def nest_settings(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys back into objects (the form of an index creation body)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out
