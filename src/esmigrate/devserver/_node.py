from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from esmigrate.devserver._build import (
    DEFAULT_VERSION,
    LAUNCHER_CLASS,
    cache_dir,
    classpath,
    ensure_launcher,
    jvm_options,
    resolve_engine,
    tail,
)
from esmigrate.devserver._java import find_java
from esmigrate.exceptions import DevServerError

#: The version ``start`` runs unless told otherwise.
OPENSEARCH_VERSION = DEFAULT_VERSION
# Half the JVM heap is a fine default on a 2-core, 24 GB machine: tests index ~10^5 small docs.
DEFAULT_HEAP = "1g"
_CHILDREN: list[subprocess.Popen[bytes]] = []


@dataclass(frozen=True)
class DevServer:
    """A running (or just stopped) development node."""

    port: int
    pid: int
    url: str
    log_file: Path
    data_dir: Path
    #: ``opensearch:VERSION``
    engine: str = f"opensearch:{DEFAULT_VERSION}"


def _node_dir(port: int) -> Path:
    return cache_dir() / "nodes" / str(port)


def _child(pid: int) -> subprocess.Popen[bytes] | None:
    return next((proc for proc in _CHILDREN if proc.pid == pid), None)


def _pid_alive(pid: int) -> bool:
    child = _child(pid)
    if child is not None:
        # Started by this process: poll() also reaps it, so no zombie lingers.
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _is_our_node(pid)


def _is_our_node(pid: int) -> bool:
    """Guard against a recycled PID: the process must be our launcher."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the PID file
    return LAUNCHER_CLASS.encode() in cmdline


def _read_state(port: int) -> DevServer | None:
    state_file = _node_dir(port) / "node.json"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return None
    server = DevServer(
        port=port,
        pid=int(state["pid"]),
        url=f"http://127.0.0.1:{port}",
        log_file=Path(state["log_file"]),
        data_dir=Path(state["data_dir"]),
        engine=str(state.get("engine") or f"opensearch:{DEFAULT_VERSION}"),
    )
    if not _pid_alive(server.pid):
        state_file.unlink(missing_ok=True)
        return None
    return server


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def status(port: int = 9200) -> DevServer | None:
    """The node started by esmigrate on ``port``, or None."""
    return _read_state(port)


def start(
    port: int = 9200,
    *,
    engine: str | None = None,
    data_dir: Path | str | None = None,
    heap: str = DEFAULT_HEAP,
    foreground: bool = False,
    wait_seconds: float = 180.0,
) -> tuple[DevServer, bool]:
    """Start a node on ``127.0.0.1:port``; returns ``(server, started)``.

    ``engine`` names the version (``opensearch:3.9.0``, ``3.9.0``, ``3``; default
    :data:`OPENSEARCH_VERSION`). ``started`` is False when a node of ours was already running there
    (of that engine, or of any when ``engine`` is None). Without ``data_dir`` the node starts
    empty each time; with it, data survives restarts. In ``foreground`` mode this call blocks
    until the node exits (Ctrl-C stops it).
    """
    wanted = resolve_engine(engine)
    existing = _read_state(port)
    if existing is not None:
        if engine is not None and existing.engine != wanted.spec:
            raise DevServerError(
                f"A dev-server of {existing.engine} already runs on port {port}, not "
                f"{wanted.spec}.",
                hint=f"Stop it first (`esmigrate dev-server stop --port {port}`), or choose "
                "another port.",
            )
        return existing, False
    if not _port_free(port):
        raise DevServerError(
            f"Port {port} on 127.0.0.1 is already in use by another process.",
            hint="Choose another with --port, or stop what listens there.",
        )
    java = find_java(wanted.min_java, str(wanted))
    node_dir = _node_dir(port)
    node_dir.mkdir(parents=True, exist_ok=True)
    log_file = node_dir / "node.log"
    log_file.write_text(f"esmigrate: {wanted} on Java {java.version} ({java.home})\n")
    dist = ensure_launcher(wanted, java, log_file)

    home = node_dir / "home"
    if data_dir is None:
        data = home / "data"
        shutil.rmtree(data, ignore_errors=True)  # ephemeral by default
    else:
        data = Path(data_dir).expanduser().resolve()
    cmd = [
        str(java.executable),
        f"-Xms{heap}",
        f"-Xmx{heap}",
        *jvm_options(wanted, java, dist, log_file),
        "-cp",
        classpath(dist),
        LAUNCHER_CLASS,
        "--home",
        str(home),
        "--data",
        str(data),
        "--port",
        str(port),
    ]
    url = f"http://127.0.0.1:{port}"
    if foreground:
        print(f"esmigrate: {wanted} on {url} (Ctrl-C stops)")
        proc = subprocess.Popen(cmd)
        _write_state(node_dir, proc.pid, log_file, data, wanted.spec)
        try:
            proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        finally:
            (node_dir / "node.json").unlink(missing_ok=True)
        return DevServer(port, proc.pid, url, log_file, data, wanted.spec), True

    with log_file.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the CLI and is not hit by its Ctrl-C
        )
    # Keep the Popen alive: the node outlives this call, and a collected Popen of a running
    # child warns (ResourceWarning) and forgets to reap it.
    _CHILDREN.append(proc)
    _write_state(node_dir, proc.pid, log_file, data, wanted.spec)
    server = DevServer(port, proc.pid, url, log_file, data, wanted.spec)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            (node_dir / "node.json").unlink(missing_ok=True)
            raise DevServerError(
                f"The {wanted} node exited during start-up (exit {proc.returncode}). "
                f"Last lines of {log_file}:\n{tail(log_file, 20)}"
            )
        if _answers(server.url + "/_cluster/health?wait_for_status=yellow&timeout=1s"):
            return server, True
        time.sleep(0.5)
    stop(port)
    raise DevServerError(
        f"The {wanted} node did not answer on port {port} within {wait_seconds:.0f}s. "
        f"Last lines of {log_file}:\n{tail(log_file, 20)}"
    )


def _write_state(node_dir: Path, pid: int, log_file: Path, data: Path, engine: str) -> None:
    state = {"pid": pid, "log_file": str(log_file), "data_dir": str(data), "engine": engine}
    tmp = node_dir / "node.json.tmp"
    tmp.write_text(json.dumps(state))
    tmp.replace(node_dir / "node.json")


def stop(port: int = 9200, *, timeout: float = 60.0) -> DevServer | None:
    """Stop the node esmigrate started on ``port``; returns it, or None if none ran."""
    server = _read_state(port)
    if server is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(server.pid):
        time.sleep(0.2)
    if _pid_alive(server.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGKILL)
        while _pid_alive(server.pid):
            time.sleep(0.1)
    child = _child(server.pid)
    if child is not None:
        child.wait()
        _CHILDREN.remove(child)
    (_node_dir(port) / "node.json").unlink(missing_ok=True)
    return server


def logs(port: int = 9200, lines: int = 50) -> str:
    """The last ``lines`` lines of the node's log."""
    log_file = _node_dir(port) / "node.log"
    if not log_file.exists():
        raise DevServerError(
            f"No dev-server log for port {port}.",
            hint="Start one with `esmigrate dev-server start`.",
        )
    return tail(log_file, lines)
