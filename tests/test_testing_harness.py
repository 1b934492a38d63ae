"""esmigrate.testing helpers that users call in their own migration tests."""

from __future__ import annotations

from typing import Any

import pytest

from esmigrate.cluster import Cluster
from esmigrate.testing import compare_server_side
from esmigrate.transform import Cast, Default, NormalizeText, RuleSet

pytestmark = pytest.mark.integration


class Drifting:
    """A rule set whose Painless form drifts from its Python form (the bug the helper catches)."""

    def __init__(self) -> None:
        self.rules = RuleSet(Default("category", "general"))

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        out = self.rules(doc)
        out["score"] = 1  # Python says 1 ...
        return out

    def painless(self) -> dict[str, Any] | None:
        script = self.rules.painless()
        assert script is not None
        return {
            **script,
            "source": script["source"] + "\nctx._source.score = 1.0;",
        }  # ... Painless 1.0


def test_compare_server_side_agrees_and_catches_drift(cluster: Cluster) -> None:
    docs: list[dict[str, Any]] = [
        {"title": "  Hello   World ", "views": "12"},
        {"title": "x", "category": "news", "views": 3},
        {"title": "bad", "views": "many"},  # Cast fails: both sides must fail
    ]
    rules = RuleSet(
        NormalizeText("title"), Default("category", "general"), Cast("views", "integer")
    )
    report = compare_server_side(cluster, rules, docs)
    assert report.checked == 3
    assert report.ok, report.mismatches

    drift = compare_server_side(cluster, Drifting(), docs[:2])
    assert not drift.ok
    assert {m.doc_id for m in drift.mismatches} == {"0", "1"}
    assert drift.mismatches[0].python["score"] == 1
    assert drift.mismatches[0].server["score"] == 1.0
