from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    #: The HTTP ports of every node of its cluster, in order (``(port,)`` for a single node).
    cluster_ports: tuple[int, ...] = ()

    @property
    def nodes(self) -> tuple[int, ...]:
        """The HTTP ports of the nodes of its cluster (this one's among them)."""
        return self.cluster_ports or (self.port,)


def _node_dir(port: int) -> Path:
    return cache_dir() / "nodes" / str(port)


def snapshot_dir(port: int) -> Path:
    """The snapshot location (``path.repo``) of the dev-server started on ``port``: every node of
    a cluster shares its first node's, so an ``fs`` repository with a relative ``location``
    works from all of them."""
    return _node_dir(port) / "home" / "snapshots"


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
        cluster_ports=tuple(int(p) for p in state.get("cluster_ports") or (port,)),
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
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        # HTTPException: whatever answered is no node yet (a connection to a port in the
        # ephemeral range with nothing listening can connect to itself and read its own request).
        return False


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's ephemeral port range (Linux; the usual one where it cannot be read)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _cluster_ports(port: int, nodes: int) -> list[int]:
    """The ports a dev-server of ``nodes`` from HTTP ``port`` binds: its HTTP ports, then its
    transport ports (a single node takes one of 9300-9400 that is free)."""
    ports = list(range(port, port + nodes))
    if nodes > 1:
        ports += [transport_port(port, i) for i in range(nodes)]
    return ports


def _first_ports(ephemeral: tuple[int, int], nodes: int) -> range:
    """The first HTTP ports to pick from for a dev-server of ``nodes``: its ports (up to the
    last transport port) from 10000 up and outside the ``ephemeral`` range, below or above it,
    whichever leaves more room; anywhere from 10000 up when the range leaves none."""
    span = TRANSPORT_OFFSET + nodes
    below = range(10_000, ephemeral[0] - span)
    above = range(max(10_000, ephemeral[1] + 1), 65536 - span)
    return max(below, above, key=len) if below or above else range(10_000, 65536 - span)


def free_port(nodes: int = 1) -> int:
    """A first HTTP port for a dev-server of ``nodes`` whose HTTP ports (``port`` ...
    ``port + nodes - 1``) and, for a cluster, transport ports (:func:`transport_port`) are all
    free now.

    The ports lie outside the kernel's ephemeral range: a client connecting to a port of that
    range while its node is stopped can be given that very port as its own and connect to
    itself, reading its own request back as the answer.
    """
    candidates = _first_ports(_ephemeral_range(), nodes)
    rnd = random.Random()
    for _ in range(200):
        port = rnd.choice(candidates)
        if all(_port_free(p) for p in _cluster_ports(port, nodes)):
            return port
    raise DevServerError(
        f"No free ports for a dev-server of {nodes} node(s) from {candidates.start} to "
        f"{candidates.stop - 1}.",
        hint="Stop dev-servers you no longer need: `esmigrate dev-server stop --port PORT`.",
    )


def status(port: int = 9200) -> DevServer | None:
    """The node started by esmigrate on ``port``, or None."""
    return _read_state(port)


def members(port: int = 9200) -> list[tuple[int, DevServer | None]]:
    """Every node of the cluster the dev-server on ``port`` belongs to, as ``(port, node)``
    (``node`` None: that one is stopped); ``[(port, None)]`` when esmigrate never started one
    there."""
    launch = _read_launch(port)
    ports = tuple(int(p) for p in launch["cluster_ports"]) if launch else (port,)
    out: list[tuple[int, DevServer | None]] = []
    for p in ports:
        node = _read_state(p)
        # A port reused since by a dev-server of another cluster is not this cluster's node.
        out.append((p, node if node is not None and node.nodes == ports else None))
    return out


@dataclass(frozen=True)
class _Launch:
    """How one node of a cluster is started, kept beside it (``launch.json``) so that node can
    be started again alone on its data path (:func:`start_node`)."""

    port: int
    engine: str
    heap: str
    data: Path
    cluster_ports: tuple[int, ...]
    #: The transport port; 0 for a single node (it takes one of 9300-9400).
    transport_port: int = 0
    cluster_name: str = "esmigrate-dev"

    @property
    def node_name(self) -> str:
        return f"esmigrate-dev-{self.port}" if len(self.cluster_ports) > 1 else "esmigrate-dev-1"

    def launcher_args(self, home: Path) -> list[str]:
        args = ["--home", str(home), "--data", str(self.data), "--port", str(self.port)]
        args += ["--node-name", self.node_name, "--cluster-name", self.cluster_name]
        args += ["--repo", str(snapshot_dir(self.cluster_ports[0]))]
        if len(self.cluster_ports) > 1:
            seeds = ",".join(
                f"127.0.0.1:{transport_port(self.cluster_ports[0], i)}"
                for i in range(len(self.cluster_ports))
            )
            managers = ",".join(f"esmigrate-dev-{p}" for p in self.cluster_ports)
            args += ["--transport-port", str(self.transport_port)]
            args += ["--seed-hosts", seeds, "--initial-managers", managers]
        return args

    def to_json(self) -> dict[str, object]:
        return {
            "port": self.port,
            "engine": self.engine,
            "heap": self.heap,
            "data": str(self.data),
            "cluster_ports": list(self.cluster_ports),
            "transport_port": self.transport_port,
            "cluster_name": self.cluster_name,
        }


#: A cluster's transport ports follow its HTTP ports at this distance (9200 -> 9300).
TRANSPORT_OFFSET = 100


def transport_port(first_http_port: int, index: int) -> int:
    """The transport port of the ``index``-th node (from 0) of the cluster whose first node
    listens for HTTP on ``first_http_port``."""
    return first_http_port + TRANSPORT_OFFSET + index


def _read_launch(port: int) -> dict[str, Any] | None:
    try:
        loaded = json.loads((_node_dir(port) / "launch.json").read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _load_launch(port: int) -> _Launch | None:
    raw = _read_launch(port)
    if raw is None:
        return None
    return _Launch(
        port=int(str(raw["port"])),
        engine=str(raw["engine"]),
        heap=str(raw["heap"]),
        data=Path(str(raw["data"])),
        cluster_ports=tuple(int(p) for p in raw["cluster_ports"]),
        transport_port=int(str(raw.get("transport_port") or 0)),
        cluster_name=str(raw.get("cluster_name") or "esmigrate-dev"),
    )


def start(
    port: int = 9200,
    *,
    engine: str | None = None,
    data_dir: Path | str | None = None,
    heap: str = DEFAULT_HEAP,
    foreground: bool = False,
    wait_seconds: float = 180.0,
    nodes: int = 1,
) -> tuple[DevServer, bool]:
    """Start a node on ``127.0.0.1:port``; returns ``(server, started)``.

    ``engine`` names the version (``opensearch:3.9.0``, ``3.9.0``, ``3``; default
    :data:`OPENSEARCH_VERSION`). ``started`` is False when a node of ours was already running there
    (of that engine, or of any when ``engine`` is None). Without ``data_dir`` the node starts
    empty each time; with it, data survives restarts. In ``foreground`` mode this call blocks
    until the node exits (Ctrl-C stops it).

    ``nodes`` > 1 starts a cluster of that many nodes on loopback, each its own process (JVM of
    ``heap``) and data path: HTTP on ``port``, ``port + 1``, ...; transport on ``port + 100``,
    ``port + 101``, ... (:func:`transport_port`); with ``data_dir``, node *i* keeps its data in
    ``data_dir/node-i``. It returns once every node has joined; the server returned is the first
    node, its :attr:`DevServer.nodes` name them all. :func:`stop` stops them all,
    :func:`stop_node` and :func:`start_node` one of them.
    """
    if nodes < 1:
        raise DevServerError(
            f"--nodes must be 1 or more, not {nodes}.",
            hint="A cluster on loopback: e.g. `esmigrate dev-server start --nodes 3`.",
        )
    if nodes > 1 and foreground:
        raise DevServerError(
            "--foreground runs a single node, not a cluster.",
            hint="Start the cluster in the background; `esmigrate dev-server stop` stops it.",
        )
    if port + nodes - 1 > 65535 - TRANSPORT_OFFSET:
        raise DevServerError(
            f"Port {port} leaves no room for {nodes} nodes and their transport ports "
            f"(HTTP {port}-{port + nodes - 1}, transport {transport_port(port, 0)}-"
            f"{transport_port(port, nodes - 1)}).",
            hint="Choose a lower --port.",
        )
    wanted = resolve_engine(engine)
    ports = tuple(range(port, port + nodes))
    existing = _read_state(port)
    if existing is not None:
        if engine is not None and existing.engine != wanted.spec:
            raise DevServerError(
                f"A dev-server of {existing.engine} already runs on port {port}, not "
                f"{wanted.spec}.",
                hint=f"Stop it first (`esmigrate dev-server stop --port {port}`), or choose "
                "another port.",
            )
        if existing.nodes != ports and (nodes > 1 or len(existing.nodes) > 1):
            raise DevServerError(
                f"A dev-server of {len(existing.nodes)} node(s) already runs on port {port}, "
                f"not one of {nodes}.",
                hint=f"Stop it first (`esmigrate dev-server stop --port {port}`), or choose "
                "another port.",
            )
        return existing, False
    for p in ports:
        if p != port and _read_state(p) is not None:
            raise DevServerError(
                f"Port {p}, which node {p - port + 1} of the cluster would take, runs another "
                "dev-server.",
                hint=f"Stop it first (`esmigrate dev-server stop --port {p}`), or choose "
                "another --port.",
            )
    for p in _cluster_ports(port, nodes):
        if not _port_free(p):
            raise DevServerError(
                f"Port {p} on 127.0.0.1 is already in use by another process.",
                hint="Choose another with --port, or stop what listens there."
                if nodes == 1
                else f"A cluster of {nodes} uses HTTP ports {port}-{port + nodes - 1} and "
                f"transport ports {transport_port(port, 0)}-{transport_port(port, nodes - 1)}; "
                "choose another --port, or stop what listens there.",
            )
    launches = []
    for i, p in enumerate(ports):
        home = _node_dir(p) / "home"
        if data_dir is None:
            data = home / "data"
            shutil.rmtree(data, ignore_errors=True)  # ephemeral by default
        else:
            base = Path(data_dir).expanduser().resolve()
            data = base if nodes == 1 else base / f"node-{i + 1}"
        launches.append(
            _Launch(
                port=p,
                engine=wanted.spec,
                heap=heap,
                data=data,
                cluster_ports=ports,
                transport_port=transport_port(port, i) if nodes > 1 else 0,
                cluster_name="esmigrate-dev" if nodes == 1 else f"esmigrate-dev-{port}",
            )
        )
    if foreground:
        return _run_foreground(launches[0]), True
    procs = [_spawn(launch) for launch in launches]
    try:
        _wait_ready(launches[0], procs, wait_seconds)
    except BaseException:
        for launch in launches:
            stop_node(launch.port)
        raise
    first = _read_state(port)
    assert first is not None
    return first, True


def _command(launch: _Launch) -> tuple[list[str], Path, str]:
    """The node's command line, its log file and what it runs (prepares the log)."""
    wanted = resolve_engine(launch.engine)
    java = find_java(wanted.min_java, str(wanted))
    node_dir = _node_dir(launch.port)
    node_dir.mkdir(parents=True, exist_ok=True)
    log_file = node_dir / "node.log"
    log_file.write_text(f"esmigrate: {wanted} on Java {java.version} ({java.home})\n")
    dist = ensure_launcher(wanted, java, log_file)
    cmd = [
        str(java.executable),
        f"-Xms{launch.heap}",
        f"-Xmx{launch.heap}",
        *jvm_options(wanted, java, dist, log_file),
        "-cp",
        classpath(dist),
        LAUNCHER_CLASS,
        *launch.launcher_args(node_dir / "home"),
    ]
    (node_dir / "launch.json").write_text(json.dumps(launch.to_json()))
    return cmd, log_file, str(wanted)


def _run_foreground(launch: _Launch) -> DevServer:
    cmd, log_file, what = _command(launch)
    url = f"http://127.0.0.1:{launch.port}"
    node_dir = _node_dir(launch.port)
    print(f"esmigrate: {what} on {url} (Ctrl-C stops)")
    proc = subprocess.Popen(cmd)
    _write_state(node_dir, proc.pid, log_file, launch)
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        (node_dir / "node.json").unlink(missing_ok=True)
    return DevServer(launch.port, proc.pid, url, log_file, launch.data, launch.engine)


def _spawn(launch: _Launch) -> subprocess.Popen[bytes]:
    cmd, log_file, _ = _command(launch)
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
    _write_state(_node_dir(launch.port), proc.pid, log_file, launch)
    return proc


def _wait_ready(launch: _Launch, procs: list[subprocess.Popen[bytes]], wait_seconds: float) -> None:
    """Until ``launch``'s node answers, with every node of its cluster joined and every primary
    allocated (yellow); an error naming the node that exited or the silence."""
    nodes = len(launch.cluster_ports)
    url = f"http://127.0.0.1:{launch.port}/_cluster/health?wait_for_status=yellow&timeout=1s"
    if nodes > 1:
        url += f"&wait_for_nodes={nodes}"
    what = resolve_engine(launch.engine)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                port = next(p for p in launch.cluster_ports if _pid_of(p) == proc.pid)
                (_node_dir(port) / "node.json").unlink(missing_ok=True)
                log_file = _node_dir(port) / "node.log"
                raise DevServerError(
                    f"The {what} node on port {port} exited during start-up (exit "
                    f"{proc.returncode}). Last lines of {log_file}:\n{tail(log_file, 20)}"
                )
        if _answers(url):
            return
        time.sleep(0.5)
    log_file = _node_dir(launch.port) / "node.log"
    joined = "" if nodes == 1 else f" with all {nodes} nodes joined"
    raise DevServerError(
        f"The {what} node did not answer on port {launch.port}{joined} within "
        f"{wait_seconds:.0f}s. Last lines of {log_file}:\n{tail(log_file, 20)}"
    )


def _pid_of(port: int) -> int | None:
    try:
        return int(json.loads((_node_dir(port) / "node.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def _write_state(node_dir: Path, pid: int, log_file: Path, launch: _Launch) -> None:
    state = {
        "pid": pid,
        "log_file": str(log_file),
        "data_dir": str(launch.data),
        "engine": launch.engine,
        "cluster_ports": list(launch.cluster_ports),
    }
    tmp = node_dir / "node.json.tmp"
    tmp.write_text(json.dumps(state))
    tmp.replace(node_dir / "node.json")


def stop(port: int = 9200, *, timeout: float = 60.0) -> DevServer | None:
    """Stop the dev-server esmigrate started on ``port``, every node of its cluster, and delete
    their data unless it was started with ``data_dir``; returns the node on ``port`` (or, when
    that one was down already, another of its cluster), or None if none ran."""
    running = [node for _, node in members(port) if node is not None]
    for node in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(node.pid, signal.SIGTERM)
    for node in running:
        _stopped(node, timeout)
        ephemeral = _node_dir(node.port) / "home" / "data"
        if node.data_dir == ephemeral:
            # No --data: the next start would wipe it anyway (the tests' nodes, on ports of
            # their own, would otherwise leave theirs behind).
            shutil.rmtree(ephemeral, ignore_errors=True)
    mine = [node for node in running if node.port == port]
    return next(iter(mine or running), None)


def stop_node(port: int, *, kill: bool = False, timeout: float = 60.0) -> DevServer | None:
    """Stop the one node on ``port`` (the rest of its cluster runs on): SIGTERM, as an
    orchestrator stops a node, or with ``kill`` SIGKILL, as a crash does. Returns it, or None if
    none ran there. :func:`start_node` starts it again on the same data path."""
    node = _read_state(port)
    if node is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(node.pid, signal.SIGKILL if kill else signal.SIGTERM)
    _stopped(node, timeout)
    return node


def start_node(port: int, *, wait_seconds: float = 180.0) -> DevServer:
    """Start again the stopped node on ``port`` of a dev-server cluster, on its data path and
    with its settings, and wait until it has joined its cluster (the others must be running)."""
    node = _read_state(port)
    if node is not None:
        return node
    launch = _load_launch(port)
    if launch is None:
        raise DevServerError(
            f"No dev-server node was ever started on port {port}.",
            hint="Start one with `esmigrate dev-server start`.",
        )
    proc = _spawn(launch)
    try:
        _wait_ready(launch, [proc], wait_seconds)
    except BaseException:
        stop_node(port)
        raise
    started = _read_state(port)
    assert started is not None
    return started


def _stopped(server: DevServer, timeout: float) -> None:
    """Until ``server``'s process is gone (SIGKILL after ``timeout``); forgets its state."""
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
    (_node_dir(server.port) / "node.json").unlink(missing_ok=True)


def logs(port: int = 9200, lines: int = 50) -> str:
    """The last ``lines`` lines of the node's log."""
    log_file = _node_dir(port) / "node.log"
    if not log_file.exists():
        raise DevServerError(
            f"No dev-server log for port {port}.",
            hint="Start one with `esmigrate dev-server start`.",
        )
    return tail(log_file, lines)
