"""The script layer: loading files, the revision graph, targets, checksums, new revisions."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esmigrate import command
from esmigrate.exceptions import RevisionGraphError, ScriptError, TargetError
from esmigrate.script import RevisionGraph, Script, ScriptDirectory, checksum, load_script
from tests.migration_project import make_project, write_script


def graph_of(tmp_path: Path) -> RevisionGraph:
    return ScriptDirectory(tmp_path / "p" / "migrations", root=tmp_path / "p").load()


def test_checksum_ignores_line_endings_only() -> None:
    assert checksum(b"a\r\nb\r\n") == checksum(b"a\nb\n") == checksum(b"a\rb\r")
    assert checksum(b"a\nb\n") != checksum(b"a\nb \n")


def test_linear_graph_order_heads_and_paths(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p", history_index="h")
    write_script(config, "r3", "r2")
    write_script(config, "r1", None)
    write_script(config, "r2", "r1")
    graph = graph_of(tmp_path)
    assert graph.order == ("r1", "r2", "r3")
    assert graph.heads == ("r3",)
    assert graph.upgrade_path("head", ()).revisions == ("r1", "r2", "r3")
    assert graph.upgrade_path("head", {"r1"}).revisions == ("r2", "r3")
    assert graph.upgrade_path("r2", ()).revisions == ("r1", "r2")
    assert graph.upgrade_path("+1", {"r1"}).revisions == ("r2",)
    assert graph.downgrade_path("-1", {"r1", "r2", "r3"}).revisions == ("r3",)
    assert graph.downgrade_path("r1", {"r1", "r2", "r3"}).revisions == ("r3", "r2")
    assert graph.downgrade_path("base", {"r1", "r2"}).revisions == ("r2", "r1")


def test_branches_merge_and_prefixes(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p", history_index="h")
    write_script(config, "aa01", None)
    write_script(config, "bb01", "aa01")
    write_script(config, "cc01", "aa01")
    graph = graph_of(tmp_path)
    assert set(graph.heads) == {"bb01", "cc01"}
    with pytest.raises(RevisionGraphError) as err:
        graph.upgrade_path("head", ())
    assert "2 heads" in err.value.message
    assert "esmigrate merge" in (err.value.hint or "")
    assert set(graph.upgrade_path("heads", ()).revisions) == {"aa01", "bb01", "cc01"}
    assert graph.upgrade_path("bb", ()).revisions == ("aa01", "bb01")  # unique prefix
    write_script(config, "dd01", ("bb01", "cc01"))  # the merge
    graph = graph_of(tmp_path)
    assert graph.heads == ("dd01",)
    assert graph["dd01"].is_merge
    assert graph.upgrade_path("head", {"aa01", "cc01"}).revisions == ("bb01", "dd01")
    # Downgrading to bb01 undoes the merge and the other branch.
    assert graph.downgrade_path("bb01", set(graph.order)).revisions == ("dd01", "cc01")
    with pytest.raises(TargetError, match="ambiguous"):
        graph.resolve("")


def test_unknown_and_misdirected_targets(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p", history_index="h")
    write_script(config, "r1", None)
    graph = graph_of(tmp_path)
    with pytest.raises(TargetError, match="Unknown revision 'zzz'"):
        graph.upgrade_path("zzz", ())
    with pytest.raises(TargetError, match="downgrade"):
        graph.upgrade_path("base", ())
    with pytest.raises(TargetError, match="only 0 revision"):
        graph.downgrade_path("-1", ())
    with pytest.raises(TargetError, match="not applied"):
        graph.downgrade_path("r1", ())


def test_cycle_is_named_with_its_files(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p", history_index="h")
    write_script(config, "r0", None)
    write_script(config, "r1", "r2")
    write_script(config, "r2", "r1")
    with pytest.raises(RevisionGraphError) as err:
        graph_of(tmp_path)
    assert "cycle" in err.value.message
    assert "r1_x.py" in err.value.message
    assert "r2_x.py" in err.value.message
    assert len(err.value.paths) == 2


def test_missing_down_revision_names_the_file(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p", history_index="h")
    path = write_script(config, "r1", "nope")
    with pytest.raises(RevisionGraphError) as err:
        graph_of(tmp_path)
    assert str(path) in err.value.message
    assert "'nope'" in err.value.message
    assert err.value.hint
    assert "down_revision" in err.value.hint


def test_duplicate_revision_ids(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p", history_index="h")
    write_script(config, "r1", None)
    (config.migrations_path / "copy.py").write_text(
        (config.migrations_path / "r1_x.py").read_text()
    )
    with pytest.raises(RevisionGraphError, match="Two migration scripts"):
        graph_of(tmp_path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("revision = 'r1'\ndown_revision = None\ndef upgrade(op)\n", "syntax error at line 3"),
        ("import not_a_module_xyz\n", "failed to import (line 1): ModuleNotFoundError"),
        ("down_revision = None\ndef upgrade(op): pass\n", "does not define `revision`"),
        ("revision = 'r1'\ndef upgrade(op): pass\n", "does not define `down_revision`"),
        ("revision = 'r1'\ndown_revision = None\n", "does not define `upgrade(op)`"),
        ("revision = 'head'\ndown_revision = None\ndef upgrade(op): pass\n", "invalid revision"),
        ("revision = 'r1'\ndown_revision = 5\ndef upgrade(op): pass\n", "invalid down_revision"),
    ],
)
def test_bad_scripts_name_the_file_and_the_fix(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.py"
    path.write_text(text)
    with pytest.raises(ScriptError) as err:
        load_script(path)
    assert fragment in err.value.message
    assert str(path) in err.value.message
    assert err.value.hint


def test_message_falls_back_to_the_docstring(tmp_path: Path) -> None:
    path = tmp_path / "s.py"
    path.write_text(
        '"""Add tags.\n\nMore."""\nrevision = "r1"\ndown_revision = None\ndef upgrade(op): pass\n'
    )
    script = load_script(path)
    assert isinstance(script, Script)
    assert script.message == "Add tags."
    assert script.downgrade is None


def test_revision_command_writes_a_loadable_script_after_the_head(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p", history_index="h")
    first = command.revision(config, "create posts", rev_id="a1")
    second = command.revision(config, 'add "tags"')
    assert first["down_revisions"] == []
    assert second["down_revisions"] == ["a1"]
    graph = graph_of(tmp_path)
    assert graph.heads == (second["revision"],)
    assert graph[second["revision"]].message == 'add "tags"'
    assert (tmp_path / "p" / second["path"]).name.endswith("_add_tags.py")
    # A branch, then a merge of the two heads.
    command.revision(config, "branch", rev_id="b1", head=["a1"])
    with pytest.raises(RevisionGraphError, match="2 heads"):
        command.revision(config, "after two heads")
    merged = command.merge(config, "join")
    assert sorted(merged["down_revisions"]) == sorted([second["revision"], "b1"])
    assert graph_of(tmp_path).heads == (merged["revision"],)
    with pytest.raises(RevisionGraphError, match="already used"):
        command.revision(config, "again", rev_id="a1")


def test_init_writes_config_and_template(tmp_path: Path) -> None:
    result = command.init(tmp_path / "proj", url="http://es:9200", history_index="myhist")
    config_path = Path(result["config"])
    assert config_path.name == "esmigrate.toml"
    from esmigrate.config import load_config

    config = load_config(config_path, env={})
    assert config.history_index == "myhist"
    assert config.connection.urls == ("http://es:9200",)
    assert (config.migrations_path / "script.py.tmpl").is_file()
    created = command.revision(config, "first")
    assert (config.root / created["path"]).is_file()
    from esmigrate.exceptions import ConfigError

    with pytest.raises(ConfigError, match="already exists"):
        command.init(tmp_path / "proj")


def test_init_into_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n')
    command.init(tmp_path, pyproject=True, migrations_dir="es/migrations")
    from esmigrate.config import load_config

    config = load_config(cwd=tmp_path, env={})
    assert config.source == tmp_path / "pyproject.toml"
    assert config.migrations_path == tmp_path.resolve() / "es" / "migrations"
    assert "[project]" in (tmp_path / "pyproject.toml").read_text()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(min_value=0, max_value=30), max_size=3), min_size=1, max_size=12)
)
def test_order_always_puts_parents_first(parent_choices: list[list[int]]) -> None:
    # Revision i may only point at revisions < i, so the input is always a DAG.
    scripts = []
    for i, choices in enumerate(parent_choices):
        parents = tuple(sorted({f"r{c % i}" for c in choices})) if i else ()
        scripts.append(
            Script(f"r{i}", parents, "", Path(f"{i:03d}.py"), "", lambda op: None, None, None)  # type: ignore[arg-type]
        )
    graph = RevisionGraph(scripts)
    position = {r: n for n, r in enumerate(graph.order)}
    for script in scripts:
        for parent in script.down_revisions:
            assert position[parent] < position[script.revision]
    for head in graph.heads:
        path = graph.upgrade_path(head, ()).revisions
        assert set(path) == graph.ancestors(head)


def test_lease_ttl_from_file_and_flag(tmp_path: Path) -> None:
    from esmigrate.config import load_config
    from esmigrate.exceptions import ConfigError

    (tmp_path / "esmigrate.toml").write_text("[esmigrate]\nlease_ttl = 7.5\n")
    assert load_config(cwd=tmp_path, env={}).lease_ttl == 7.5
    assert load_config(cwd=tmp_path, env={}, lease_ttl=3).lease_ttl == 3.0
    (tmp_path / "esmigrate.toml").write_text('[esmigrate]\nlease_ttl = "soon"\n')
    with pytest.raises(ConfigError, match="lease_ttl"):
        load_config(cwd=tmp_path, env={})
