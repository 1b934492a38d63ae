"""opensearch-py (2.x and 3.x), the client for OpenSearch 2/3. Loaded through ``_clients``."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

import opensearchpy

from esmigrate.cluster import _clients
from esmigrate.cluster import _exact_json as exact_json
from esmigrate.cluster._errors import api_error, nothing_sent, unreachable
from esmigrate.config import ConnectionSettings
from esmigrate.exceptions import ClusterError, ConfigError


class _OrjsonSerializer(opensearchpy.JSONSerializer):
    """orjson for opensearch-py: several times faster than the stdlib on large pages."""

    def loads(self, s: str | bytes) -> Any:
        return exact_json.loads(s)

    def dumps(self, data: Any) -> str | bytes:
        if isinstance(data, (str, bytes)):
            return data
        return exact_json.dumps(data, default=self.default)


class OpenSearchClient:
    """esmigrate's requests through an ``opensearchpy.OpenSearch`` client's transport."""

    engine = "opensearch"
    library = "opensearch-py " + version("opensearch-py")

    def __init__(self, raw: Any, *, owned: bool) -> None:
        self.raw = raw
        self._owned = owned

    def send(self, method: str, url: str, headers: Mapping[str, str], body: Any) -> Any:
        return self.raw.transport.perform_request(method, url, headers=headers, body=body)

    def info(self, where: str) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self.send("GET", "/", {"accept": "application/json"}, None)
        except Exception as exc:
            mapped = self.error(exc, "GET", "/", where)
            if mapped is None:
                raise
            raise mapped from None
        return result

    def error(self, exc: Exception, method: str, path: str, where: str) -> ClusterError | None:
        if isinstance(exc, opensearchpy.SSLError):
            return unreachable("tls", exc, method, path, where)
        if isinstance(exc, opensearchpy.ConnectionTimeout):
            return unreachable("timeout", exc, method, path, where)
        if isinstance(exc, opensearchpy.ConnectionError):
            kind = "connection" if nothing_sent(exc) else "lost"
            return unreachable(kind, exc, method, path, where)
        if isinstance(exc, opensearchpy.TransportError):
            if isinstance(exc.status_code, int):
                return api_error(exc.status_code, exc.info, method, path, where)
            return unreachable("transport", exc, method, path, where)
        return None

    def refused(self, exc: BaseException) -> bool:
        return (
            isinstance(exc, opensearchpy.ConnectionError)
            and not isinstance(exc, (opensearchpy.SSLError, opensearchpy.ConnectionTimeout))
            and nothing_sent(exc)
        )

    def dropped(self, exc: BaseException) -> bool:
        # opensearch-py's ConnectionTimeout is a ConnectionError too: a timed-out request is
        # not dropped (it may be running), and is left out here.
        return isinstance(exc, opensearchpy.ConnectionError) and not isinstance(
            exc, (opensearchpy.SSLError, opensearchpy.ConnectionTimeout)
        )

    @property
    def owned(self) -> bool:
        return self._owned

    def close(self) -> None:
        if self._owned:
            self.raw.close()


def build(settings: ConnectionSettings) -> OpenSearchClient:
    kwargs: dict[str, Any] = {
        "hosts": list(settings.urls),
        "timeout": settings.request_timeout,
        # Retries are Cluster.retry's, only where nothing reached the server (connection
        # refused). A timed-out or 5xx request may have been applied: resending a
        # compare-and-set write, an `_aliases` swap or a `_reindex` start would turn success
        # into a conflict or start a second task. Callers retry explicitly where a request is
        # idempotent.
        "max_retries": 0,
        "retry_on_timeout": False,
        "retry_on_status": (),
        "serializer": _OrjsonSerializer(),
        # Several threads (sliced copies, per-shard scans) share one client.
        "pool_maxsize": 16,
        "verify_certs": settings.verify_certs,
        "ssl_show_warn": settings.verify_certs,
    }
    if settings.username is not None:
        password = settings.password.reveal() if settings.password else ""
        kwargs["http_auth"] = (settings.username, password)
    if settings.api_key is not None:
        kwargs["headers"] = {"authorization": f"ApiKey {settings.api_key.reveal()}"}
    elif settings.bearer_token is not None:
        kwargs["headers"] = {"authorization": f"Bearer {settings.bearer_token.reveal()}"}
    if settings.aws_sigv4:
        kwargs["http_auth"] = _clients.load("aws").signer(settings)
    if settings.ca_certs:
        kwargs["ca_certs"] = settings.ca_certs
    if settings.ssl_assert_fingerprint:
        # The pinned certificate is the trust: it is usually self-signed, so no CA check.
        kwargs["ssl_assert_fingerprint"] = settings.ssl_assert_fingerprint
        kwargs["verify_certs"] = False
        kwargs["ssl_show_warn"] = False
    if settings.client_cert:
        kwargs["client_cert"] = settings.client_cert
        kwargs["client_key"] = settings.client_key
    return OpenSearchClient(opensearchpy.OpenSearch(**kwargs), owned=True)


def wrap(raw: Any) -> OpenSearchClient:
    """An application's own client, used as it is and never closed here."""
    if not isinstance(raw, opensearchpy.OpenSearch):
        raise ConfigError(
            f"esmigrate needs a synchronous opensearchpy.OpenSearch client, not "
            f"{type(raw).__name__}.",
            hint="Pass an opensearchpy.OpenSearch configured like the application's client.",
        )
    return OpenSearchClient(raw, owned=False)
