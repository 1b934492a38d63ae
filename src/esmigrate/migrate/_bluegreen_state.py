"""The typed checkpoint of a blue-green migration, and the one place it is written.

The checkpoint document (``checkpoint:<migration id>`` in the state index) holds everything a
successor process needs to resume: the phase, where the copy and the catch-up rounds stand, the
position passes, the failure count and, at the end, what the cut-over did. :class:`BlueGreenState`
is its typed form; :class:`Journal` writes it, always whole and always compare-and-set (through
:class:`~esmigrate.state.Checkpoint`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from esmigrate.state import Checkpoint

#: ``python``: a Python transform, run in this process; ``reindex``: the server's ``_reindex``
#: (a painless script, or none).
CopyMode = Literal["python", "reindex"]
Phase = Literal["copy", "catchup", "blocked", "done", "abandoned"]

#: Fields holding a ``_seq_no`` per shard: stored with string keys (JSON objects), used with ints.
_PER_SHARD = (
    "checkpoints",
    "terms",
    "cursors",
    "round_cursors",
    "positions",
    "target_checkpoints",
)


def shard_map(value: Mapping[Any, Any] | None) -> dict[int, int]:
    """``{"0": 12}`` (as stored) → ``{0: 12}``."""
    return {int(k): int(v) for k, v in (value or {}).items()}


def stored_shard_map(value: Mapping[int, int]) -> dict[str, int]:
    return {str(k): int(v) for k, v in value.items()}


@dataclass
class TaskStep:
    """A server task run to completion, resumably: its id while it runs, and whether it ended."""

    task: str | None = None
    #: A task was started for this step (a restart then skips what the target holds already).
    started: bool = False
    done: bool = False


@dataclass
class PendingRound:
    """The catch-up round in progress and the source checkpoints it copies up to."""

    round: int
    checkpoints: dict[int, int]


@dataclass
class BlueGreenState:
    """What a blue-green migration (or a catch-up started from known checkpoints) has done."""

    strategy: str
    mode: CopyMode
    source: str
    target: str
    alias: str
    write_alias: str
    aliases: list[str]
    alias_actions: list[dict[str, Any]]
    fingerprint: str
    dead_letter_index: str
    phase: Phase = "copy"
    started_at: float = 0.0
    #: The target's settings of ``LOAD_SETTINGS`` (refresh interval, replicas, write copies) as
    #: the migration asks them, restored after the initial copy.
    restore_settings: dict[str, Any] | None = None
    #: Catch-up rounds run so far.
    round: int = 0
    #: Documents written to the target by the copy and the rounds (a rewrite counts again).
    copied: int = 0
    copy_total: int | None = None
    #: Per shard of the source: every operation up to it is copied (C0, then each round's).
    checkpoints: dict[int, int] | None = None
    #: Per shard of the source: its primary term when what was copied of it was read (set
    #: with C0; None: not known, as in a checkpoint of an earlier version).
    terms: dict[int, int] | None = None
    #: Shards of the source whose primary term changed: the running round reads them whole.
    reread: list[int] = field(default_factory=list)
    #: Times a source shard's primary changed during the migration (each read again in full).
    primary_changes: int = 0
    #: A migration filled from the application's documents (``_source_copy``): the fill is done.
    filled: bool = False
    #: The initial copy as a server task (copy mode reindex).
    copy: TaskStep = field(default_factory=TaskStep)
    #: The initial copy as one server task per shard of the source, each bounded by that
    #: shard's C0 (copy mode reindex, when it positions the documents as it copies them).
    copy_tasks: dict[int, TaskStep] = field(default_factory=dict)
    #: Per shard of the source: how far the initial copy got (copy mode python).
    cursors: dict[int, int] = field(default_factory=dict)
    pending: PendingRound | None = None
    #: The running round's server task (copy mode reindex).
    round_task: TaskStep = field(default_factory=TaskStep)
    #: The running round's server tasks, one per shard of the source, when the engine reads a
    #: shard by slice (copy mode reindex; ``Capabilities.slice_by_shard``).
    round_tasks: dict[int, TaskStep] = field(default_factory=dict)
    #: Per shard of the source: how far the running round got (copy mode python).
    round_cursors: dict[int, int] = field(default_factory=dict)
    #: ``{"id", "seq"}`` of document versions the target rejected: left out of later tasks.
    excluded: list[dict[str, Any]] = field(default_factory=list)
    #: Per shard of the target: how far the position passes got.
    positions: dict[int, int] = field(default_factory=dict)
    #: Documents of the source positioned by the copy itself (0: the copy did not position
    #: them, and the first position pass checks all of the target). Saved with the copy's end.
    copy_positioned: int = 0
    #: Documents of the target the position passes checked against the source.
    positions_checked: int = 0
    reconciled_deletes: int = 0
    failures: int = 0
    last_delta: int = 0
    progress: dict[str, Any] = field(default_factory=dict)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    blocked_seconds: float = 0.0
    #: Where the write-block window went (block, final round, positions, reconcile, validate).
    blocked_breakdown: dict[str, float] = field(default_factory=dict)
    #: Per shard of the target, at the swap: a rollback carries back what came after.
    target_checkpoints: dict[int, int] | None = None
    cut_over_at: float | None = None
    finished_at: float | None = None
    final_count: int = 0
    #: (id, routing) of dead-lettered documents the source has and the target lacks.
    dead_lettered_missing: list[list[str | None]] = field(default_factory=list)
    error: str | None = None

    def add_phase_time(self, phase: str, seconds: float) -> None:
        self.phase_seconds[phase] = round(self.phase_seconds.get(phase, 0.0) + seconds, 3)

    def to_doc(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        for name in _PER_SHARD:
            if doc[name] is not None:
                doc[name] = stored_shard_map(doc[name])
        if self.pending is not None:
            doc["pending"]["checkpoints"] = stored_shard_map(self.pending.checkpoints)
        doc["round_tasks"] = {str(k): v for k, v in doc["round_tasks"].items()}
        doc["copy_tasks"] = {str(k): v for k, v in doc["copy_tasks"].items()}
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> BlueGreenState:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in doc.items() if k in names}
        for name in _PER_SHARD:
            if values.get(name) is not None:
                values[name] = shard_map(values[name])
        values["copy"] = TaskStep(**(values.get("copy") or {}))
        values["round_task"] = TaskStep(**(values.get("round_task") or {}))
        for name in ("round_tasks", "copy_tasks"):
            values[name] = {int(k): TaskStep(**v) for k, v in (values.get(name) or {}).items()}
        pending = values.get("pending")
        values["pending"] = (
            PendingRound(int(pending["round"]), shard_map(pending["checkpoints"]))
            if pending
            else None
        )
        if values.get("mode") == "pipeline":
            values["mode"] = "python"  # the name of copy mode python before 0.2
        return cls(**values)


class Journal:
    """The checkpoint document of one migration and its typed state: :meth:`save` is the only
    write (the whole state, compare-and-set)."""

    def __init__(self, store: Checkpoint, state: BlueGreenState) -> None:
        self.store = store
        self.state = state

    @classmethod
    def load(cls, store: Checkpoint) -> tuple[dict[str, Any], Journal | None]:
        """The stored document (as read) and, when it is a blue-green one, its journal."""
        doc = store.load()
        if not doc.get("source") or not doc.get("fingerprint"):
            return doc, None
        return doc, cls(store, BlueGreenState.from_doc(doc))

    @classmethod
    def start(cls, store: Checkpoint, state: BlueGreenState) -> Journal:
        """A new run: the next save replaces whatever the document held."""
        store.reset()
        journal = cls(store, state)
        journal.save()
        return journal

    def save(self) -> None:
        self.store.data = self.state.to_doc()
        self.store.save()

    def document(self) -> dict[str, Any]:
        """The stored document as last saved (with ``migration`` and ``kind``)."""
        return dict(self.store.data)
