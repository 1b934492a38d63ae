"""The embedded node's life cycle: start, start again, stop, taken port."""

from __future__ import annotations

import os
import socket

import pytest

from esmigrate import devserver
from esmigrate.exceptions import DevServerError

from .conftest import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bool(os.environ.get("ESMIGRATE_TEST_URL")), reason="tests the embedded node"
    ),
]


def test_start_twice_then_stop_leaves_nothing_behind() -> None:
    port = free_port()
    server, started = devserver.start(port, heap="512m")
    try:
        assert started
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
    assert devserver.stop(port) is None


def test_taken_port_is_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(DevServerError, match=f"Port {port}"):
            devserver.start(port)


def test_data_dir_survives_restart(tmp_path: object) -> None:
    import pathlib
    import urllib.request

    data = pathlib.Path(str(tmp_path)) / "data"
    port = free_port()

    def put_and_count(put: bool) -> int:
        base = f"http://127.0.0.1:{port}"
        if put:
            req = urllib.request.Request(
                f"{base}/keep/_doc/1?refresh=true",
                data=b'{"a":1}',
                method="PUT",
                headers={"content-type": "application/json"},
            )
            urllib.request.urlopen(req, timeout=30).read()
        with urllib.request.urlopen(f"{base}/keep/_count", timeout=30) as resp:
            import json

            return int(json.loads(resp.read())["count"])

    devserver.start(port, data_dir=data, heap="512m")
    try:
        assert put_and_count(True) == 1
    finally:
        devserver.stop(port)
    devserver.start(port, data_dir=data, heap="512m")
    try:
        assert put_and_count(False) == 1
    finally:
        devserver.stop(port)
