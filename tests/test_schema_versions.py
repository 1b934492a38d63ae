"""SchemaVersion parsing and ordering; upgrade-path finding (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest

from esmigrate.exceptions import InvalidVersion, NoUpgradePath, SchemaError, TransformError
from esmigrate.schema import SchemaVersion, Upgrades, upgrades, version


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("1.0", (1, 0, 0)), ("1.0.0", (1, 0, 0)), ("2.13.4", (2, 13, 4)), ("0.1", (0, 1, 0)),
     ("10.0.12", (10, 0, 12))],
)  # fmt: skip
def test_parse(text: str, parsed: tuple[int, int, int]) -> None:
    v = SchemaVersion.parse(text)
    assert (v.major, v.minor, v.patch) == parsed
    assert SchemaVersion.parse(str(v)) == v


@pytest.mark.parametrize(
    "text",
    ["1", "v1.0", " 1.0", "1.0 ", "01.0", "1.00", "1.0.0.0", "1.0-beta", "1.0.0+build", "-1.0",
     "1.x", "", "1..0", "1.0.", "\u0661.\u0660"],
)  # fmt: skip
def test_parse_is_strict(text: str) -> None:
    with pytest.raises(InvalidVersion, match="Invalid schema version"):
        SchemaVersion.parse(text)


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(InvalidVersion, match="must be a string"):
        SchemaVersion.parse(2.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidVersion):
        SchemaVersion(1, -1, 0)


def test_ordering_is_numeric() -> None:
    texts = ["1.10.0", "1.9.0", "1.9.10", "1.9.2", "0.99", "2.0", "10.0"]
    ordered = sorted(SchemaVersion.parse(t) for t in texts)
    assert [str(v) for v in ordered] == [
        "0.99.0", "1.9.0", "1.9.2", "1.9.10", "1.10.0", "2.0.0", "10.0.0",
    ]  # fmt: skip
    assert version("1.0") == version("1.0.0")
    assert len({version("1.0"), version("1.0.0")}) == 1


def test_bump_and_compatibility() -> None:
    v = version("1.4.2")
    assert str(v.bump("major")) == "2.0.0"
    assert str(v.bump("minor")) == "1.5.0"
    assert str(v.bump("patch")) == "1.4.3"
    assert v.bump_level(version("2.0")) == "major"
    assert v.bump_level(version("1.5")) == "minor"
    assert v.bump_level(version("1.4.3")) == "patch"
    assert v.bump_level(version("1.4.2")) is None
    assert v.can_read(version("1.0"))
    assert not v.can_read(version("1.5"))
    assert not v.can_read(version("0.9"))


def _graph(*edges: tuple[str, str], latest: str = "3.0") -> Upgrades:
    graph = Upgrades("Post", latest, unversioned="1.0")
    for low, high in edges:

        def step(src: dict[str, Any], low: str = low, high: str = high) -> dict[str, Any]:
            return {**src, "trail": [*src.get("trail", []), f"{low}>{high}"]}

        graph.step(low, high)(step)
    return graph


def _path(graph: Upgrades, start: str, goal: str | None = None) -> list[str]:
    return [f"{s.from_version}>{s.to_version}" for s in graph.path(start, goal)]


def test_multi_step_path() -> None:
    graph = _graph(("1.0", "2.0"), ("2.0", "3.0"))
    assert _path(graph, "1.0") == ["1.0.0>2.0.0", "2.0.0>3.0.0"]
    assert _path(graph, "2.0") == ["2.0.0>3.0.0"]
    assert _path(graph, "3.0") == []


def test_shortest_path_over_branches() -> None:
    graph = _graph(
        ("1.0", "1.1"), ("1.1", "1.2"), ("1.2", "2.0"), ("2.0", "3.0"),
        ("1.1", "2.0"),  # a shortcut
        ("1.0", "1.5"), ("1.5", "3.0"),  # another branch, as short as it gets
    )  # fmt: skip
    assert _path(graph, "1.0") == ["1.0.0>1.5.0", "1.5.0>3.0.0"]
    assert _path(graph, "1.1") == ["1.1.0>2.0.0", "2.0.0>3.0.0"]
    assert _path(graph, "1.2") == ["1.2.0>2.0.0", "2.0.0>3.0.0"]
    # Ties are broken by version order, not by registration order.
    tie = _graph(("1.0", "2.5"), ("2.5", "3.0"), ("1.0", "2.0"), ("2.0", "3.0"))
    assert _path(tie, "1.0") == ["1.0.0>2.0.0", "2.0.0>3.0.0"]


def test_no_path_names_the_versions() -> None:
    graph = _graph(("1.0", "2.0"), ("2.5", "3.0"))
    with pytest.raises(NoUpgradePath) as caught:
        graph.path("1.0")
    err = caught.value
    assert (err.from_version, err.to_version) == ("1.0.0", "3.0.0")
    assert "from version 1.0.0 to 3.0.0" in err.message
    assert "1.0.0 → 2.0.0, 2.5.0 → 3.0.0" in err.message
    assert err.steps == [("1.0.0", "2.0.0"), ("2.5.0", "3.0.0")]
    with pytest.raises(NoUpgradePath, match="newer"):
        graph.migrate({"schema_version": "4.0"})


def test_migrate_applies_steps_and_records_metadata() -> None:
    graph = _graph(("1.0", "2.0"), ("2.0", "3.0"))
    source = {"title": "x", "schema_version": "1.0"}
    out = graph.migrate(source)
    assert out["trail"] == ["1.0>2.0", "2.0>3.0"]
    assert out["schema_version"] == "3.0.0"
    assert out["migrated_from_version"] == "1.0.0"
    assert out["migration_timestamp"].endswith("+00:00")
    assert source == {"title": "x", "schema_version": "1.0"}  # input untouched
    # Already current: an unchanged copy, no migration metadata.
    current = {"title": "y", "schema_version": "3.0.0"}
    again = graph(current)
    assert again == current
    assert again is not current
    # Unversioned documents are taken as the declared version.
    assert graph.migrate({"title": "z"})["trail"] == ["1.0>2.0", "2.0>3.0"]
    strict = Upgrades("Post", "2.0")
    with pytest.raises(SchemaError, match="no 'schema_version' field"):
        strict.migrate({"title": "z"})
    with pytest.raises(InvalidVersion, match="invalid 'schema_version'"):
        graph.migrate({"schema_version": "one"})


def test_step_failures_are_transform_errors() -> None:
    graph = Upgrades("Post", "2.0")

    @graph.step("1.0", "2.0")
    def broken(src: dict[str, Any]) -> dict[str, Any]:
        return {**src, "n": int(src["n"])}

    with pytest.raises(TransformError) as caught:
        graph.migrate({"schema_version": "1.0", "n": "x"}, doc_id="d1")
    assert caught.value.rule == "upgrade 1.0.0→2.0.0"
    assert caught.value.doc_id == "d1"
    assert isinstance(caught.value.cause, ValueError)
    assert "broken" in caught.value.message

    with pytest.raises(SchemaError, match="two upgrade steps"):
        graph.step("1.0", "2.0")(lambda src: src)
    with pytest.raises(SchemaError, match="must change the version"):
        upgrades("1.0", "1.0.0")
