"""Small HTTP(S) servers of the test suite's own: a proxy in front of the embedded node that
terminates TLS and checks credentials (basic auth, or an AWS SigV4 signature it recomputes), and
a stand-in that answers like Elasticsearch so the exact requests a client sends can be read.

Every request is recorded (method, path with query, headers, body) in ``server.requests``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


@dataclass
class Request:
    method: str
    path: str  # with the query string, as sent
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def ndjson(self) -> list[Any]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, status: int, data: Any, **headers: str) -> Response:
        return cls(
            status, json.dumps(data).encode(), {"content-type": "application/json", **headers}
        )


Answer = Callable[[Request], Response]

# Not copied between the two sides of a proxy: they describe one connection, not the message.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "host",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that refused our certificate hangs up mid-handshake: expected here


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 (HTTPS with ``tls``) answering with ``answer``."""

    def __init__(self, answer: Answer, *, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.requests: list[Request] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("content-encoding") == "gzip":  # a compressing client
                    body = gzip.decompress(body)
                request = Request(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                server.requests.append(request)
                response = server.answer(request)
                self.send_response(response.status)
                for name, value in response.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                payload = b"" if self.command == "HEAD" else response.body
                self.send_header("content-length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test reads server.requests

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            # The handshake happens in the connection's own thread, on its first read: a client
            # that gives up on the certificate does not stall the accepting loop.
            self._httpd.socket = tls.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = int(self._httpd.server_address[1])
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def forward_to(upstream: str) -> Answer:
    """Send each request on to ``upstream`` (the embedded node) and relay its answer."""
    parts = urlsplit(upstream)

    def answer(request: Request) -> Response:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
        try:
            headers = {k: v for k, v in request.headers.items() if k not in _HOP_BY_HOP}
            headers.pop("authorization", None)
            headers.pop("content-encoding", None)  # the body was decompressed on arrival
            connection.request(request.method, request.path, body=request.body, headers=headers)
            reply = connection.getresponse()
            return Response(reply.status, reply.read(), dict(reply.getheaders()))
        finally:
            connection.close()

    return answer


def basic_auth(username: str, password: str, then: Answer) -> Answer:
    """Refuse anything without these basic-auth credentials as OpenSearch's security plugin
    does (401, ``Unauthorized``), else ``then``."""
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    def answer(request: Request) -> Response:
        if request.headers.get("authorization") != expected:
            return Response(
                401,
                b"Unauthorized",
                {
                    "content-type": "text/plain; charset=UTF-8",
                    "www-authenticate": 'Basic realm="OpenSearch Security"',
                },
            )
        return then(request)

    return answer


def sigv4(access_key: str, secret_key: str, region: str, service: str, then: Answer) -> Answer:
    """Refuse anything whose AWS SigV4 signature is not the one botocore computes from these
    credentials (the headers it names, the path, the query and the body), else ``then``."""
    credentials = Credentials(access_key, secret_key)

    def answer(request: Request) -> Response:
        problem = _sigv4_problem(request, credentials, region, service)
        if problem is not None:
            return Response.of_json(403, {"message": problem})
        return then(request)

    return answer


def _sigv4_problem(
    request: Request, credentials: Credentials, region: str, service: str
) -> str | None:
    header = request.headers.get("authorization", "")
    if not header.startswith("AWS4-HMAC-SHA256 "):
        return "not signed"
    fields = dict(part.strip().split("=", 1) for part in header[17:].split(","))
    key_id, _date, scope_region, scope_service, _ = fields["Credential"].split("/")
    if (key_id, scope_region, scope_service) != (credentials.access_key, region, service):
        return f"signed for {fields['Credential']}"
    if request.headers.get("x-amz-content-sha256") != hashlib.sha256(request.body).hexdigest():
        return "x-amz-content-sha256 is not the body's hash"
    signed = fields["SignedHeaders"].split(";")
    unsigned = AWSRequest(
        method=request.method,
        url=f"https://{request.headers['host']}{request.path}",
        data=request.body,
        headers={name: request.headers[name] for name in signed},
    )
    auth = SigV4Auth(credentials, service, region)
    unsigned.context["timestamp"] = request.headers["x-amz-date"]
    canonical = auth.canonical_request(unsigned)
    expected = auth.signature(auth.string_to_sign(unsigned, canonical), unsigned)
    if expected != fields["Signature"]:
        return "signature does not match"
    return None


@contextmanager
def serving(answer: Answer, *, tls: ssl.SSLContext | None = None) -> Iterator[LocalServer]:
    with LocalServer(answer, tls=tls) as server:
        yield server
