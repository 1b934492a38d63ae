"""Copy mode ``reindex``: the server's ``_reindex`` as a polled task (painless or no transform).

Documents the target rejects are dead-lettered and excluded from the rerun by (id, ``_seq_no``);
a painless exception dead-letters its document from inside the task (:func:`guarded_script`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from esmigrate.cluster import LOAD, Cluster
from esmigrate.exceptions import MigrationCancelled, PreflightError, RequestError, TaskFailed
from esmigrate.migrate._deadletters import DeadLetters
from esmigrate.migrate._refused import refused, write_block
from esmigrate.migrate._tasks import cancel_task
from esmigrate.progress import Meter
from esmigrate.transform.painless import split_functions

#: How often a running copy task's target is checked for a write block.
BLOCK_CHECK_SECONDS = 5.0

_DEEP_COPY = (
    "def __esmCopy(def v) { if (v instanceof Map) { Map m = new HashMap(); "
    "for (def e : v.entrySet()) { m.put(e.getKey(), __esmCopy(e.getValue())); } return m; } "
    "if (v instanceof List) { List l = new ArrayList(); for (def x : v) { l.add(__esmCopy(x)); } "
    "return l; } return v; }\n"
)


_REROUTING = re.compile(
    r"""ctx\s*(?:\.\s*(op|_id|_routing|_index)|\[\s*['"](op|_id|_routing|_index)['"]\s*\])"""
    r"""\s*(?:=(?!=)|\+=)"""
)


def refuse_rerouting(script: Mapping[str, Any] | None) -> None:
    """A copy script must map each document to itself: one that sets ``ctx.op`` (noop,
    delete), ``ctx._id``, ``ctx._routing`` or ``ctx._index`` leaves documents of the source
    without their copy, which the delete reconciliation and the validation cannot tell from a
    lost write. Refused before anything is written."""
    source = str((script or {}).get("source") or "")
    match = _REROUTING.search(source)
    if match:
        field = match.group(1) or match.group(2)
        raise PreflightError(
            f"The copy script assigns ctx.{field}: a migration copies every document to the "
            "same id and routing, so it cannot skip, delete or re-route documents.",
            problem="script_reroutes",
            hint="Filter documents with a query before the migration, or transform _source "
            "only; use op.reindex for a one-off copy that reshapes ids.",
        )


def guarded_script(
    script: Mapping[str, Any] | None, dead_letter_index: str, migration: str, target: str
) -> dict[str, Any] | None:
    """Wrap the user's painless so an exception sends that one document to the dead letters.

    Without it one bad document aborts the whole ``_reindex`` task.
    """
    if script is None:
        return None
    if "source" not in script:
        return dict(script)  # a stored script cannot be wrapped; failures abort the task
    params = dict(script.get("params") or {})
    params.update({"__esm_dl": dead_letter_index, "__esm_mig": migration, "__esm_target": target})
    functions, statements = split_functions(str(script["source"]))
    source = (
        _DEEP_COPY
        + functions
        + "\ndef __esmOrig = __esmCopy(ctx._source); String __esmSrcIndex = ctx._index;\n"
        # The routing too: without it a routed document can be neither positioned nor found.
        + "String __esmRouting = ctx._routing;\n"
        + "try {\n"
        + statements
        + "\n} catch (Exception __esmE) {\n"
        + "  String __esmId = ctx._id;\n"
        + "  ctx._index = params.__esm_dl; ctx._id = params.__esm_mig + ':' + __esmId;\n"
        + "  ctx._source = ['migration': params.__esm_mig, 'id': __esmId, 'routing': __esmRouting, "
        + "'source_index': __esmSrcIndex, 'target_index': params.__esm_target, "
        + "'stage': 'transform', 'error_type': 'script_exception', "
        + "'reason': __esmE.toString(), 'source': __esmOrig];\n"
        + "}\n"
    )
    return {"lang": script.get("lang", "painless"), "source": source, "params": params}


#: Up to this many rejected documents are excluded from a rerun one (id, _seq_no) clause each;
#: beyond it the bool clause limit (1024 by default) would refuse the query.
EXACT_EXCLUSIONS = 400


class ReindexCopier:
    """Server-side ``_reindex`` as a polled task; mapping rejections go to the dead letters."""

    def __init__(
        self,
        cluster: Cluster,
        source: str,
        target: str,
        script: dict[str, Any] | None,
        dead_letters: DeadLetters,
        *,
        slices: int | str = "auto",
        requests_per_second: float | None = None,
        batch_size: int = 1000,
        cancel: threading.Event | None = None,
    ) -> None:
        self.cluster = cluster
        self.source = source
        self.target = target
        self.script = guarded_script(script, dead_letters.index, dead_letters.migration, target)
        self.dead_letters = dead_letters
        self.slices = slices
        self.requests_per_second = requests_per_second
        self.batch_size = batch_size
        self.cancel = cancel
        self._unfound: set[str] = set()

    def body(
        self,
        query: Mapping[str, Any] | None,
        create: bool,
        excluded: list[dict[str, Any]],
        shard: tuple[int, int] | None = None,
    ) -> dict[str, Any]:
        """The ``_reindex`` body; ``shard`` = (shard, number of shards) reads that one shard of
        the source (see ``Capabilities.slice_by_shard``)."""
        if len(excluded) <= EXACT_EXCLUSIONS:
            # One (id, _seq_no) pair per rejected version: a later write of the document has
            # another _seq_no and is copied.
            must_not = [
                {
                    "bool": {
                        "filter": [{"ids": {"values": [e["id"]]}}, {"term": {"_seq_no": e["seq"]}}]
                    }
                }
                for e in excluded
            ]
        else:
            # Past the bool clause limit: one clause of two sets. It can hide a version that was
            # not rejected (its id and its _seq_no are each in a set); hidden_by_exclusion()
            # finds those afterwards and they are copied then.
            must_not = [
                {
                    "bool": {
                        "filter": [
                            {"ids": {"values": sorted({e["id"] for e in excluded})}},
                            {"terms": {"_seq_no": sorted({int(e["seq"]) for e in excluded})}},
                        ]
                    }
                }
            ]
        q: dict[str, Any] = dict(query) if query else {"match_all": {}}
        if must_not:
            q = {"bool": {"filter": [q], "must_not": must_not}}
        body: dict[str, Any] = {
            "source": {"index": self.source, "size": self.batch_size, "query": q},
            "dest": {"index": self.target, "op_type": "create" if create else "index"},
        }
        if shard is not None:
            body["source"]["slice"] = {"id": shard[0], "max": shard[1]}
        if create:
            body["conflicts"] = "proceed"
        if self.script is not None:
            body["script"] = self.script
        return body

    def hidden_by_exclusion(
        self, query: Mapping[str, Any] | None, excluded: list[dict[str, Any]]
    ) -> list[str]:
        """Ids the set-based exclusion hid although their current version was not rejected
        (written again since, or matched by another document's _seq_no): they still need a copy."""
        if len(excluded) <= EXACT_EXCLUSIONS:
            return []
        rejected = {str(e["id"]): int(e["seq"]) for e in excluded}
        ids = sorted(rejected)
        hidden: list[str] = []
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            filters: list[dict[str, Any]] = [{"ids": {"values": chunk}}]
            if query:
                filters.append(dict(query))
            hits = self.cluster.search(
                self.source,
                {
                    "query": {"bool": {"filter": filters}},
                    "size": len(chunk),
                    "seq_no_primary_term": True,
                    "_source": False,
                },
            )["hits"]["hits"]
            hidden.extend(h["_id"] for h in hits if int(h["_seq_no"]) != rejected[h["_id"]])
        return hidden

    def start(
        self,
        query: Mapping[str, Any] | None,
        *,
        create: bool,
        excluded: list[dict[str, Any]],
        shard: tuple[int, int] | None = None,
    ) -> str:
        result = self.cluster.request(
            "POST",
            "/_reindex",
            params={
                "wait_for_completion": "false",
                # A manual slice excludes automatic slicing (the engine refuses both).
                "slices": self.slices if shard is None else 1,
                "requests_per_second": self.requests_per_second or -1,
            },
            body=self.body(query, create, excluded, shard),
        )
        return str(result["task"])

    def wait(
        self,
        task_id: str,
        meter: Meter | None,
        poll: float = 0.5,
        *,
        check: Callable[[], None] | None = None,
    ) -> tuple[dict[str, Any], list[Any]]:
        """Wait for the task; (response, failures). Raises when the task itself errored.

        ``check`` runs at every poll; when it raises, the task is cancelled and the error
        propagates (the failure budget uses it to stop a task that dead-letters everything).
        """

        next_block_check = time.monotonic() + BLOCK_CHECK_SECONDS

        def status(s: dict[str, Any]) -> None:
            nonlocal next_block_check
            if time.monotonic() >= next_block_check:
                # A write-blocked target (the flood-stage watermark) makes the task retry its
                # bulks for about a minute and then fail every document: stop it now instead.
                next_block_check = time.monotonic() + BLOCK_CHECK_SECONDS
                block = write_block(self.cluster, self.target)
                if block is not None:
                    # The task is left to end by itself (it fails once its retries run out, or
                    # goes on if the block is lifted first): the checkpoint names it, so the next
                    # run waits for it. It is not cancelled: OpenSearch 2.19 never completes a
                    # reindex task cancelled during its bulk-retry backoff.
                    raise refused(
                        self.target,
                        429,
                        "cluster_block_exception",
                        f"index [{self.target}] has the index.blocks.{block} block",
                        after="",
                    )
            if self.cancel is not None and self.cancel.is_set():
                cancel_task(self.cluster, task_id)
                raise MigrationCancelled(
                    "The migration was cancelled.", hint="Run it again to resume."
                )
            if check is not None:
                try:
                    check()
                except BaseException:
                    cancel_task(self.cluster, task_id, wait=True)
                    raise
            if meter is not None:
                done = sum(int(s.get(k, 0)) for k in ("created", "updated", "version_conflicts"))
                meter.update(done)

        try:
            response = self.cluster.wait_task(task_id, on_status=status, poll_interval=poll)
            return response, []
        except KeyboardInterrupt:
            # Ctrl-C stops the work, not only the client; the next run restarts the task and
            # skips what is already copied.
            cancel_task(self.cluster, task_id)
            raise
        except TaskFailed as exc:
            response = exc.response or {}
            failures = list(response.get("failures") or [])
            if exc.error or not failures:
                raise
            for failure in failures:
                if int(failure.get("status") or 0) in LOAD.statuses:
                    # Refused for load or a block after the task's own retries: the documents
                    # are fine, so none is dead-lettered (see _refused).
                    cause = failure.get("cause") or {}
                    raise refused(
                        self.target,
                        int(failure["status"]),
                        cause.get("type"),
                        cause.get("reason"),
                        after=" after the _reindex task's own retries",
                    ) from exc
            return response, failures

    def dead_letter_failures(
        self, failures: list[dict[str, Any]], query: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Record rejected documents; return exclusions ``{"id", "seq"}`` for the rerun.

        ``query``: the task's; the retry below copies only what it matches (a copy bounded by
        ``_seq_no`` must not write a newer version the bound leaves to a later round)."""
        by_id: dict[str, dict[str, Any]] = {}
        for f in failures:
            if f.get("id") is None:
                raise TaskFailed(
                    f"_reindex into {self.target} failed: {json.dumps(f)[:500]}",
                    task_id="?",
                    response=f,
                )
            by_id[str(f["id"])] = f
        # A failure names the id only, and the version that failed may have been rewritten
        # since: copy the current versions once more and dead-letter only what fails again.
        # (Otherwise a valid rewrite would be looked up, excluded by its _seq_no, never copied.)
        try:
            retry = self.cluster.request(
                "POST", "/_reindex", body=self.body(_with_ids(query, sorted(by_id)), False, [])
            )
        except RequestError as exc:
            # A synchronous _reindex whose documents fail answers 400 with the failures.
            if not isinstance(exc.body, dict) or "failures" not in exc.body:
                raise
            retry = exc.body
        again = {str(f["id"]): f for f in retry.get("failures") or [] if f.get("id") is not None}
        by_id = {doc_id: again[doc_id] for doc_id in by_id if doc_id in again}
        if not by_id:
            return []
        entries: list[dict[str, Any]] = []
        excluded: list[dict[str, Any]] = []
        # The failures carry no routing: an ids search finds the documents on whatever shard
        # custom routing put them (an _mget by id alone would look on the wrong one).
        hits = self.cluster.search(
            self.source,
            {
                "size": len(by_id) * 4,
                "query": {"ids": {"values": list(by_id)}},
                "seq_no_primary_term": True,
            },
        )["hits"]["hits"]
        found = {h["_id"] for h in hits}
        for doc_id in by_id:
            if doc_id in found:
                continue
            if doc_id in self._unfound:
                raise TaskFailed(
                    f"_reindex into {self.target} keeps failing on document {doc_id!r}, which a "
                    f"search of {self.source} cannot find, so it can neither be dead-lettered nor "
                    f"excluded: {json.dumps(by_id[doc_id])[:300]}",
                    task_id="?",
                    response=by_id[doc_id],
                )
            self._unfound.add(doc_id)  # deleted meanwhile: the rerun will not meet it again
        for doc in hits:
            f = by_id[doc["_id"]]
            cause = f.get("cause") or {}
            entries.append(
                {
                    "id": doc["_id"],
                    "routing": doc.get("_routing"),
                    "source_index": self.source,
                    "target_index": self.target,
                    "stage": "index",
                    "error_type": cause.get("type"),
                    "reason": cause.get("reason"),
                    "source": doc["_source"],
                }
            )
            excluded.append({"id": doc["_id"], "seq": doc["_seq_no"]})
        self.dead_letters.write(entries)
        return excluded


def _with_ids(query: Mapping[str, Any] | None, ids: list[str]) -> dict[str, Any]:
    """``query`` narrowed to the documents ``ids``."""
    only = {"ids": {"values": ids}}
    return {"bool": {"filter": [dict(query), only]}} if query else only
