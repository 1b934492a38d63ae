"""What a rollback leaves in the history: the revision or rebuild whose change it undid.

A rollback point made by a migration names it (``rev:REV:ALIAS`` or ``rebuild:ALIAS:RUN``). Once
the aliases are back on the point, the record of that revision or rebuild says so: its state
becomes ``rolled_back`` (as after a ``downgrade``; Flyway shows an undone migration as
"Undone"), so ``current`` no longer names it, ``status`` lists it as pending and the next
``upgrade`` applies it again; ``rolled_back_to`` and an event name the point. A revision that a
later applied revision builds on keeps its state ``applied`` (the revisions after it are still
in place, and ``current`` must not go back past them): it gets ``rolled_back_to`` and the event
only. Written compare-and-set, as every document of the history index; a rollback run again
changes nothing more.
"""

from __future__ import annotations

from typing import Any

from esmigrate.exceptions import ConflictError
from esmigrate.state._history import (
    APPLIED,
    ROLLED_BACK,
    HistoryStore,
    Identity,
    timestamp,
)
from esmigrate.state._rebuilds import rebuild_records, save_rebuild

#: Compare-and-set attempts before giving up (another writer changed the record meanwhile).
_ATTEMPTS = 5


def _mark(doc: dict[str, Any], state: str, point: str, aliases: list[str]) -> bool:
    """Update ``doc``; False when it already records this rollback in this state."""
    if (doc.get("rolled_back_to") or {}).get("point") == point and doc.get("state") == state:
        return False
    at = timestamp()
    identity = Identity.current()
    doc.update(state=state, rolled_back_to={"point": point, "aliases": aliases, "at": at})
    events = list(doc.get("events") or [])
    events.append(
        {
            "at": at,
            "action": "rollback",
            "outcome": state,
            "point": point,
            "by": identity.owner,
            "user": identity.user,
        }
    )
    doc["events"] = events
    return True


def record_rollback(
    store: HistoryStore, migration: str | None, point: str, aliases: list[str]
) -> dict[str, Any] | None:
    """Record in the history that the aliases went back to ``point``, which ``migration`` (the
    point's) recorded; returns what was marked (``kind``, ``id``, ``state``), None when the
    point names no recorded revision or rebuild (a point made by hand)."""
    if not migration:
        return None
    kind, _, rest = migration.partition(":")
    for attempt in range(_ATTEMPTS):
        try:
            if kind == "rev":
                # rev:REVISION:ALIAS (an alias holds no colon)
                return _revision(store, rest.rpartition(":")[0], point, aliases)
            if kind == "rebuild":
                return _rebuild(store, migration, point, aliases)
            return None
        except ConflictError:
            if attempt == _ATTEMPTS - 1:
                raise
    return None


def _revision(
    store: HistoryStore, revision: str, point: str, aliases: list[str]
) -> dict[str, Any] | None:
    records = store.revisions()
    record = records.get(revision)
    if record is None or record.state not in (APPLIED, ROLLED_BACK):
        return None
    built_on = any(
        revision in (other.doc.get("down_revisions") or []) and other.state == APPLIED
        for other in records.values()
    )
    state = APPLIED if built_on else ROLLED_BACK
    if record.state == ROLLED_BACK and not (record.doc.get("rolled_back_to") or {}):
        return None  # undone by a downgrade already: nothing of this rollback to add
    if _mark(record.doc, state, point, aliases):
        store.write_revision(record)
    return {"kind": "revision", "id": revision, "state": state}


def _rebuild(
    store: HistoryStore, migration: str, point: str, aliases: list[str]
) -> dict[str, Any] | None:
    found = [r for r in rebuild_records(store) if r.id == migration]
    if not found or found[0].state not in (APPLIED, ROLLED_BACK):
        return None
    record = found[0]
    if _mark(record.doc, ROLLED_BACK, point, aliases):
        save_rebuild(store, record)
    return {"kind": "rebuild", "id": record.id, "state": ROLLED_BACK}
