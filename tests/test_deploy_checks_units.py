"""The user checks of ``deploy --check`` as data: which watch gets which check, and what a
check that raises samples as (pure logic, no cluster)."""

from __future__ import annotations

from typing import Any

from esmigrate.deploy_steps import UserCheck


def metrics_down(cluster: Any) -> bool:
    raise RuntimeError("metrics endpoint down")


def test_a_check_that_raises_is_a_failed_sample_naming_the_exception() -> None:
    (check,) = UserCheck("posts=app:metrics_down", "posts", metrics_down).checks_for(["posts"])
    sample = check.sample(None)  # type: ignore[arg-type]
    assert check.name == "posts/metrics_down"
    assert not sample.ok
    assert sample.detail == "raised RuntimeError: metrics endpoint down"


def test_a_check_of_an_alias_joins_only_the_watch_of_that_alias() -> None:
    check = UserCheck("posts=app:metrics_down", "posts", metrics_down)
    assert check.checks_for(["tags"]) == []
    everywhere = UserCheck("app:metrics_down", None, metrics_down)
    assert [c.name for c in everywhere.checks_for(["tags"])] == ["metrics_down"]
