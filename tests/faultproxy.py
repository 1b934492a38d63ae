"""A fault-injecting HTTP proxy on loopback, between esmigrate and a node, for the fault tests.

Each client connection gets its own upstream connection and its own thread; requests on it are
read whole (headers and ``Content-Length`` body), matched against the proxy's rules in order,
and either forwarded untouched or hit by the first rule that matches:

- ``status``: answer 429 or 503 (with the server's error shape) without forwarding: the server
  never sees the request;
- ``reset``: forward half the request body, then reset both connections: the server gets a
  truncated request and applies nothing;
- ``lost``: forward the request, read the server's whole answer, then reset the client's
  connection instead of answering: the server applied it and the client cannot know;
- ``slow``: forward the request and hold the answer ``delay`` seconds (past the client's
  timeout) before relaying it: the server applied it, the client gave up.

A rule matches a method and a path pattern (``re.search`` on the path without the query), and
optionally a pattern in the body; it fires on matches ``skip + 1`` to ``skip + times``. Every
fault injected is counted per kind (:attr:`FaultProxy.injected`), and every request seen is
logged (method, path, what happened) for the test's assertions.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["status", "reset", "lost", "slow"]


@dataclass
class Rule:
    kind: Kind
    method: str
    path: str
    times: int = 1
    skip: int = 0
    status: int = 429
    delay: float = 0.0
    body: str | None = None
    seen: int = 0
    fired: int = 0

    def wants(self, method: str, path: str, body: bytes) -> bool:
        if self.method != "*" and method != self.method:
            return False
        if not re.search(self.path, path):
            return False
        if self.body is not None and not re.search(self.body.encode(), body):
            return False
        self.seen += 1
        if self.seen <= self.skip or self.fired >= self.times:
            return False
        self.fired += 1
        return True


@dataclass
class Seen:
    method: str
    path: str
    fault: Kind | None
    status: int | None = None
    at: float = field(default_factory=time.monotonic)


class _Closed(Exception):
    pass


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (not a clean FIN), as a dropped connection looks."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _Closed
        self.buf += chunk

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(marker)
        return head + marker

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def message(self, *, response_to: str | None = None) -> tuple[bytes, bytes]:
        """One HTTP message: (head, body). ``response_to``: the request's method (a response
        to HEAD has no body)."""
        head = self.until(b"\r\n\r\n")
        headers = _headers(head)
        if response_to == "HEAD":
            return head, b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line = self.until(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                chunk = self.exactly(size + 2)
                body += size_line + chunk
                if size == 0:
                    return head, body
        length = int(headers.get("content-length", "0"))
        return head, self.exactly(length)


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    out = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out


def _error_answer(status: int) -> bytes:
    reason = {429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "Error")
    etype = "es_rejected_execution_exception" if status == 429 else "unavailable_shards_exception"
    error = {
        "error": {
            "root_cause": [{"type": etype, "reason": f"injected {status} by the fault proxy"}],
            "type": etype,
            "reason": f"injected {status} by the fault proxy",
        },
        "status": status,
    }
    body = json.dumps(error).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; charset=UTF-8\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class FaultProxy:
    """``with FaultProxy(upstream_port) as proxy:`` send esmigrate to ``proxy.url``; add rules
    with :meth:`add` (or :meth:`clear` them) at any time."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.rules: list[Rule] = []
        self.injected: Counter[str] = Counter()
        self.log: list[Seen] = []
        self._lock = threading.Lock()
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = int(self._server.getsockname()[1])
        self._open: set[socket.socket] = set()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(
        self,
        kind: Kind,
        method: str,
        path: str,
        *,
        times: int = 1,
        skip: int = 0,
        status: int = 429,
        delay: float = 0.0,
        body: str | None = None,
    ) -> Rule:
        rule = Rule(kind, method, path, times, skip, status, delay, body)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def seen(self, method: str, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.log if s.method == method and re.search(path, s.path)]

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._server.close()
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            _reset(conn)
        for thread in self._threads:
            thread.join(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the proxy -------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)

    @contextlib.contextmanager
    def _tracked(self, *socks: socket.socket) -> Iterator[None]:
        with self._lock:
            self._open.update(socks)
        try:
            yield
        finally:
            with self._lock:
                self._open.difference_update(socks)
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.close()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=300)
        except OSError:
            _reset(client)  # the node is down: as a refused connection looks to the client
            return
        with self._tracked(client, upstream):
            reader, answers = _Reader(client), _Reader(upstream)
            try:
                while not self._stopped.is_set():
                    if not self._one(client, upstream, reader, answers):
                        return
            except (_Closed, OSError):
                return

    def _one(
        self, client: socket.socket, upstream: socket.socket, reader: _Reader, answers: _Reader
    ) -> bool:
        """Relay (or fault) one request; False when the connection is done."""
        head, body = reader.message()
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, target, _ = request_line.split(" ", 2)
        path = target.split("?", 1)[0]
        with self._lock:
            rule = next((r for r in self.rules if r.wants(method, path, body)), None)
            entry = Seen(method, path, rule.kind if rule else None)
            self.log.append(entry)
            if rule is not None:
                self.injected[rule.kind] += 1
        if rule is not None and rule.kind == "status":
            entry.status = rule.status
            client.sendall(_error_answer(rule.status))
            return True
        if rule is not None and rule.kind == "reset":
            if body:  # a truncated body: the server waits for the rest, then drops it all
                upstream.sendall(head + body[: len(body) // 2])
            _reset(upstream)
            _reset(client)
            return False
        upstream.sendall(head + body)
        answer_head, answer_body = answers.message(response_to=method)
        with contextlib.suppress(ValueError, IndexError):
            entry.status = int(answer_head.split(b" ", 2)[1])
        if rule is not None and rule.kind == "lost":
            _reset(client)
            return False
        if rule is not None and rule.kind == "slow":
            time.sleep(rule.delay)
        client.sendall(answer_head + answer_body)
        return True
