"""A live writer: an application stand-in that keeps indexing, updating and deleting through an
alias while a migration runs, and logs every acknowledged operation, so a test (or the demo) can
prove afterwards that no write was lost, no delete resurrected and no update reverted.

It runs in its own process (a migration in the test process must not slow it down through the
GIL, nor the other way round). Writes refused by a write block (403) are retried until they go
through, as an application with a retry policy would; the longest refusal is the write-block
window the application saw; so are writes refused for load or for a shard not available
(429, 503). So are writes that got no answer (the node restarting, a dropped
connection): sent again until one is answered, for up to ``UNANSWERED_FOR`` seconds, and, after
such a silence, a write refused because the restarted node did not know the alias yet. Every
operation it makes is idempotent, so a write that was applied before its answer was lost ends
the same when sent again; a delete answered "not found" after such a retry is logged as the
delete it was (only this writer writes its ids).

A delete answered "not found" without such a retry is logged as ``not_found`` with the index
that answered: the writer, the only one writing its ids, last left that document present, so
the index no longer held it. On a cluster that lost a node, that is the cluster's own retry:
the coordinating node sends a write again to the new primary when the old primary's node died
before answering, and the new primary already has it. It can also be an index that lost the
document (a migration's new index missing it); the log cannot tell which, so it says where it
was asked, and :meth:`LiveWriter.report` does not count it as a delete.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings, Secret
from esmigrate.exceptions import (
    BlockedError,
    ClusterUnavailable,
    ConflictError,
    NotFoundError,
    RequestError,
)

WORDS = [
    "search",
    "index",
    "shard",
    "mapping",
    "alias",
    "schema",
    "version",
    "cluster",
    "replica",
    "segment",
]
#: How long an operation without an answer is sent again before the writer gives up (and dies:
#: a writer that stopped writing proves nothing).
UNANSWERED_FOR = 300.0


def default_document(n: int, rnd: random.Random) -> dict[str, Any]:
    """The writer's documents: a title and content with a hashtag, an author, an edit counter."""
    word = rnd.choice(WORDS)
    return {
        "title": f"Live post {n} about {word}",
        "content": f"Written while migrating #{word} #live",
        "author": f"writer{rnd.randint(1, 20)}",
        "edits": 0,
    }


def default_update(doc_id: str, edit: int, rnd: random.Random) -> dict[str, Any]:
    """The writer's partial updates: the edit counter (how many updates it sent to the
    document) and an editor."""
    return {"edits": edit, "author": f"editor{rnd.randint(1, 9)}"}


def _load(reference: str | None, default: Callable[..., dict[str, Any]]) -> Callable[..., Any]:
    """The function a ``module:function`` reference names (in the writer's process)."""
    if not reference:
        return default
    module, _, name = reference.partition(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return fn


def _settings(args: argparse.Namespace) -> ConnectionSettings:
    """How the writer process connects: the parent's settings (pickled into a file only the
    user can read: credentials never go on a command line), or the URL with the
    ``ESMIGRATE_USERNAME``/``ESMIGRATE_PASSWORD`` of the environment."""
    if args.settings:
        with open(args.settings, "rb") as fh:
            given = pickle.load(fh)
        assert isinstance(given, ConnectionSettings)
        settings = given
    else:
        settings = ConnectionSettings(
            urls=(args.url,),
            username=os.environ.get("ESMIGRATE_USERNAME") or None,
            password=Secret(os.environ["ESMIGRATE_PASSWORD"])
            if os.environ.get("ESMIGRATE_PASSWORD")
            else None,
        )
    # Every unanswered write is retried below, where the writer knows whether it matters.
    return dataclasses.replace(settings, max_retries=0)


def _run(args: argparse.Namespace) -> None:
    settings = _settings(args)
    cluster = connect(settings)
    rnd = random.Random(args.seed)
    make_document = _load(args.documents, default_document)
    make_update = _load(args.updates, default_update)
    # Several writer processes share the initial ids by residue, so each id has one writer and
    # the order of its operations is the order of that writer's log.
    existing = [
        f"{args.initial_prefix}{i}" for i in range(args.initial) if i % args.parts == args.part
    ]
    present = set(existing)
    edits: dict[str, int] = {}
    created = 0
    longest = total = 0.0
    refused = 0
    interval = 1.0 / args.rate
    index_share, update_share = args.mix[0], args.mix[0] + args.mix[1]
    with open(args.log, "w", encoding="utf-8") as log:
        next_at = time.monotonic()
        while not os.path.exists(args.stop):
            roll = rnd.random()
            op: dict[str, Any]
            if roll < index_share or not existing:
                if args.replace and existing and rnd.random() < args.replace:
                    doc_id = rnd.choice(existing)
                else:
                    doc_id = f"live-{args.seed}-{created}"
                created += 1
                op = {"op": "index", "id": doc_id, "doc": make_document(created, rnd)}
            elif roll < update_share:
                doc_id = rnd.choice(existing)
                edits[doc_id] = edits.get(doc_id, 0) + 1
                op = {"op": "update", "id": doc_id, "doc": make_update(doc_id, edits[doc_id], rnd)}
            else:
                doc_id = rnd.choice(existing)
                op = {"op": "delete", "id": doc_id}
            op["t"] = time.monotonic()
            answer, window, tries = send_operation(cluster, args.alias, op, args.stop)
            refused += tries
            longest = max(longest, window)
            total += window
            op["index"] = answer.get("_index")
            op["result"] = answer.get("result")
            log.write(json.dumps(op) + "\n")
            log.flush()
            if op["result"] in ("created", "updated", "noop") and doc_id not in present:
                present.add(doc_id)
                existing.append(doc_id)
            elif op["op"] == "delete" and op["result"] in ("deleted", "not_found"):
                # Not found: gone all the same (see the module docstring).
                present.discard(doc_id)
                existing.remove(doc_id)
            next_at += interval
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                next_at = time.monotonic()
        log.write(
            json.dumps(
                {
                    "op": "summary",
                    "blocked_longest_s": longest,
                    "blocked_total_s": total,
                    "refused": refused,
                }
            )
            + "\n"
        )
    cluster.close()


def send_operation(
    cluster: Cluster, alias: str, op: dict[str, Any], stop: str
) -> tuple[dict[str, Any], float, int]:
    first_refusal: float | None = None
    unanswered_since: float | None = None
    tries = 0
    while True:
        try:
            if op["op"] == "index":
                answer = cluster.request("PUT", f"/{alias}/_doc/{op['id']}", body=op["doc"])
            elif op["op"] == "update":
                answer = cluster.request(
                    "POST", f"/{alias}/_update/{op['id']}", body={"doc": op["doc"]}
                )
            else:
                answer = cluster.request("DELETE", f"/{alias}/_doc/{op['id']}")
            break
        except BlockedError:
            if os.path.exists(stop):
                answer = {"result": "abandoned"}
                break
            tries += 1
            first_refusal = first_refusal or time.monotonic()
            time.sleep(0.005)
        except ConflictError:
            continue  # another writer (a backfill) changed it in between: re-read and retry
        except NotFoundError as exc:
            # A delete's 404 names the index it looked in (an update's does not).
            body = exc.body if isinstance(exc.body, dict) else {}
            answer = {"result": "not_found", "_index": body.get("_index")}
            if op["op"] == "delete" and unanswered_since is not None:
                # The unanswered attempt deleted it.
                answer["result"] = "deleted"
            break
        except RequestError as exc:
            if exc.status in (429, 503):
                # Refused for load or a shard not available (nothing applied): as the block.
                tries += 1
                first_refusal = first_refusal or time.monotonic()
                time.sleep(0.05)
            elif unanswered_since is not None and _starting_up(exc, alias):
                time.sleep(0.1)
            else:
                raise
        except ClusterUnavailable:
            now = time.monotonic()
            unanswered_since = unanswered_since or now
            if now - unanswered_since > UNANSWERED_FOR:
                raise
            time.sleep(0.1)
    window = time.monotonic() - first_refusal if first_refusal is not None else 0.0
    return answer, window, tries


def _starting_up(exc: RequestError, alias: str) -> bool:
    """A write through ``alias`` that reached a node still starting up: its cluster state was
    not recovered yet, so the alias was unknown, the write asked for an index of that name to
    be created, and the creation, held until the state was recovered, found the alias. Nothing
    was written."""
    return exc.error_type == "invalid_index_name_exception" and (
        f"[{alias}], already exists as alias" in str(exc.reason)
    )


@dataclass
class WriterReport:
    """What the writer did and what must therefore be true of the index afterwards."""

    operations: int
    refused: int
    blocked_longest_s: float
    #: id -> the fields the writer last wrote (documents it created: the whole document).
    written: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ids the writer deleted (and did not write again afterwards).
    deleted: set[str] = field(default_factory=set)
    created: set[str] = field(default_factory=set)

    def expected_ids(self, initial: Iterable[str]) -> set[str]:
        return (set(initial) | self.created) - self.deleted

    def verify(
        self,
        cluster: Cluster,
        index: str,
        initial: Iterable[str],
        *,
        fields: Collection[str] | None = None,
    ) -> list[str]:
        """Problems found in ``index`` (empty: nothing lost, nothing resurrected, no update
        reverted for the fields the writer owns, or only ``fields`` of them). Streams the
        index; memory holds the ids. The first 20 of each kind are listed; :meth:`tally`
        counts them all."""
        return self.tally(cluster, index, initial, fields=fields).problems

    def tally(
        self,
        cluster: Cluster,
        index: str,
        initial: Iterable[str],
        *,
        fields: Collection[str] | None = None,
    ) -> WriterTally:
        """What :meth:`verify` finds, counted: documents lost, resurrected, reverted.

        ``fields``: compare only these of the fields the writer wrote (where a migration's
        transform rewrites the others, the document the index holds differs by design)."""
        cluster.refresh(index)
        expected = self.expected_ids(initial)
        seen: set[str] = set()
        tally = WriterTally()
        for page in cluster.scan(index, page_size=2000):
            for hit in page:
                doc_id = hit["_id"]
                seen.add(doc_id)
                if doc_id in self.deleted:
                    tally.resurrected += 1
                    tally.note(f"{doc_id}: deleted by the writer, but present (resurrected)")
                    continue
                reverted = False
                for key, value in self.written.get(doc_id, {}).items():
                    if fields is not None and key not in fields:
                        continue
                    if hit["_source"].get(key) != value:
                        reverted = True
                        tally.note(
                            f"{doc_id}: {key} is {hit['_source'].get(key)!r}, the writer last wrote {value!r}"
                        )
                tally.reverted += reverted
        missing = expected - seen
        tally.lost = len(missing)
        for doc_id in sorted(missing)[:20]:
            tally.note(f"{doc_id}: written (or pre-existing) and not deleted, but missing")
        return tally


@dataclass
class WriterTally:
    """Documents of the index that contradict the writer's log, by kind (see
    :meth:`WriterReport.tally`), and the first of them described."""

    lost: int = 0
    resurrected: int = 0
    reverted: int = 0
    problems: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        if len(self.problems) < 60:
            self.problems.append(problem)


def complete_lines(lines: Iterable[str]) -> Iterator[str]:
    """The lines of a log up to the first one without its newline: one its writer is still
    writing (a long entry reaches the file in more than one write), read once complete by a
    later call. The reading stops there, because a file read on past its end goes on with what
    was appended since, and its next line would be the rest of this one."""
    for line in lines:
        if not line.endswith("\n"):
            return
        yield line


class LiveWriter:
    """Start with ``with LiveWriter(url, alias, rate=150) as writer: ...``; ``writer.report()``
    after the block (or after :meth:`stop`) reads what it did.

    ``initial``/``initial_prefix`` name documents that exist before it starts (``d0``...), which
    it also updates and deletes. The rest shapes what it writes:

    - ``documents``: ``"module:function"`` making a new document, ``function(n, rnd)``, and
      ``updates``: ``"module:function"`` making a partial update, ``function(id, edit, rnd)``
      (imported in the writer's process; default :func:`default_document` and
      :func:`default_update`);
    - ``mix``: the shares of index and update operations (the rest are deletes), and
      ``replace``: the share of index operations that rewrite an existing document instead
      of creating one;
    - ``processes``: writer processes sharing ``rate``; each owns the initial ids with its
      residue and creates its own, so each document's operations are in one log, in order;
    - ``settings``: how to connect (TLS, API key, ...) when ``url`` and the environment's
      ``ESMIGRATE_USERNAME``/``ESMIGRATE_PASSWORD`` are not enough.
    """

    def __init__(
        self,
        url: str,
        alias: str,
        *,
        rate: float = 150.0,
        seed: int = 1,
        initial: int = 0,
        initial_prefix: str = "d",
        documents: str | None = None,
        updates: str | None = None,
        mix: tuple[float, float] = (0.35, 0.45),
        replace: float = 0.0,
        processes: int = 1,
        settings: ConnectionSettings | None = None,
    ) -> None:
        self.url, self.alias, self.rate, self.seed = url, alias, rate, seed
        self.initial, self.initial_prefix = initial, initial_prefix
        self.documents, self.updates = documents, updates
        self.mix, self.replace, self.processes = mix, replace, processes
        self._dir = Path(tempfile.mkdtemp(prefix="esmigrate-writer-"))  # mode 0700
        self._settings: Path | None = None
        if settings is not None:
            self._settings = self._dir / "settings.pickle"
            self._settings.write_bytes(pickle.dumps(dataclasses.replace(settings, client=None)))
        self.logs = [self._dir / f"ops-{k}.jsonl" for k in range(processes)]
        self._stop = self._dir / "stop"
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def log(self) -> Path:
        """The operation log of the first (or only) writer process."""
        return self.logs[0]

    def start(self) -> LiveWriter:
        for k, log in enumerate(self.logs):
            argv = [
                # -c rather than -m: the package has already imported this module.
                sys.executable, "-c", "import sys; from esmigrate._livewriter import main; main(sys.argv[1:])",
                "--url", self.url, "--alias", self.alias, "--log", str(log),
                "--stop", str(self._stop), "--rate", str(self.rate / self.processes),
                "--seed", str(self.seed + k), "--initial", str(self.initial),
                "--initial-prefix", self.initial_prefix, "--part", f"{k}/{self.processes}",
                "--mix", str(self.mix[0]), str(self.mix[1]), "--replace", str(self.replace),
            ]  # fmt: skip
            if self._settings is not None:
                argv += ["--settings", str(self._settings)]
            if self.documents:
                argv += ["--documents", self.documents]
            if self.updates:
                argv += ["--updates", self.updates]
            self._procs.append(subprocess.Popen(argv))
        # Wait for the first acknowledged write, so "during the migration" really is.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and all(p.poll() is None for p in self._procs):
            if any(log.exists() and log.stat().st_size > 0 for log in self.logs):
                return self
            time.sleep(0.05)
        codes = [p.poll() for p in self._procs]
        raise RuntimeError(f"the live writer did not start (exit {codes})")

    def stop(self) -> None:
        if not self._procs:
            return
        self._stop.touch()
        codes = []
        for proc in self._procs:
            try:
                codes.append(proc.wait(timeout=60))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        self._procs = []
        if any(codes):
            # A writer that died stopped writing: whatever it would have proved, it did not.
            raise RuntimeError(f"the live writer exited with {codes} before it was stopped")

    def __enter__(self) -> LiveWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _entries(self) -> Iterator[dict[str, Any]]:
        for log in self.logs:
            with contextlib.suppress(FileNotFoundError), log.open(encoding="utf-8") as fh:
                for line in complete_lines(fh):
                    if line.strip():
                        yield json.loads(line)

    def operations(self) -> list[dict[str, Any]]:
        """Every operation sent (``op``, ``id``, ``doc``, ``t``, the ``index`` and ``result``
        the answer named), in time order; one document's operations in the order sent."""
        ops = [e for e in self._entries() if e["op"] != "summary"]
        ops.sort(key=lambda op: op["t"])  # stable: one writer's operations keep their order
        return ops

    def count(self, index: str | None = None) -> int:
        """Operations answered so far (by ``index`` only, when given)."""
        return sum(
            1
            for e in self._entries()
            if e["op"] != "summary" and (index is None or e.get("index") == index)
        )

    def wait_for(self, n: int, index: str | None = None, timeout: float = 120) -> None:
        """Wait until ``n`` operations were answered (by ``index``): a test's "while it writes"."""
        deadline = time.monotonic() + timeout
        while self.count(index) < n:
            if any(p.poll() is not None for p in self._procs):
                raise RuntimeError("the live writer died")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the live writer made fewer than {n} operations in {timeout} s")
            time.sleep(0.2)

    def report(self) -> WriterReport:
        written: dict[str, dict[str, Any]] = {}
        deleted: set[str] = set()
        created: set[str] = set()
        longest = 0.0
        refused = 0
        operations = 0
        for entry in self._entries():
            if entry["op"] == "summary":
                longest = max(longest, float(entry.get("blocked_longest_s", 0.0)))
                refused += int(entry.get("refused", 0))
        for entry in self.operations():
            if entry["result"] in (None, "abandoned", "not_found"):
                continue
            operations += 1
            doc_id = entry["id"]
            if entry["op"] == "delete":
                deleted.add(doc_id)
                written.pop(doc_id, None)
                created.discard(doc_id)
            elif entry["op"] == "index":
                deleted.discard(doc_id)
                written[doc_id] = dict(entry["doc"])
                created.add(doc_id)
            else:
                written.setdefault(doc_id, {}).update(entry["doc"])
        return WriterReport(
            operations=operations,
            refused=refused,
            blocked_longest_s=longest,
            written=written,
            deleted=deleted,
            created=created,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="esmigrate live writer (see esmigrate.testing)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--stop", required=True)
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--initial", type=int, default=0)
    parser.add_argument("--initial-prefix", default="d")
    parser.add_argument("--documents")
    parser.add_argument("--updates")
    parser.add_argument("--mix", type=float, nargs=2, default=(0.35, 0.45))
    parser.add_argument("--replace", type=float, default=0.0)
    parser.add_argument("--part", default="0/1")
    parser.add_argument("--settings", help="ConnectionSettings, pickled (see LiveWriter)")
    args = parser.parse_args(argv)
    args.part, args.parts = (int(x) for x in args.part.split("/"))
    _run(args)


if __name__ == "__main__":
    main()
