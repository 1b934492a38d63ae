"""The exact expected state the migration tests judge by (tests/migrate_support.expected_state):
how it reads the writer's log, in particular a delete answered "not found"."""

from __future__ import annotations

from typing import Any

from tests.migrate_support import expected_state

INITIAL = {"a": {"n": 1}, "b": {"n": 2}}


def same(doc: dict[str, Any]) -> dict[str, Any]:
    return doc


def delete(doc_id: str, index: str | None, result: str) -> dict[str, Any]:
    return {"op": "delete", "id": doc_id, "index": index, "result": result}


def test_a_delete_the_old_index_answered_not_found_leaves_the_document_out() -> None:
    # The old index no longer holds it (the cluster applied the delete already), so the
    # migration must not carry it.
    ops = [delete("a", "old", "not_found")]
    assert expected_state(INITIAL, ops, "old", "new", same) == {"b": {"n": 2}}


def test_a_delete_the_new_index_answered_not_found_keeps_the_document_expected() -> None:
    # The new index lacked a document the writer left present: a loss the check must report.
    ops = [delete("a", "new", "not_found")]
    assert expected_state(INITIAL, ops, "old", "new", same) == INITIAL


def test_refused_operations_and_updates_of_missing_documents_change_nothing() -> None:
    ops = [
        delete("a", None, "abandoned"),
        {"op": "update", "id": "b", "doc": {"n": 3}, "index": "old", "result": "not_found"},
    ]
    assert expected_state(INITIAL, ops, "old", "new", same) == INITIAL
