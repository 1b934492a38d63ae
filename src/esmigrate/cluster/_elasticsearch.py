"""elasticsearch-py (8.x and 9.x), the client for Elasticsearch 8/9. Loaded through ``_clients``.

The client refuses any answer without ``X-Elastic-Product: Elasticsearch`` (OpenSearch does not
send it), and by default asks for the REST compatibility of its own major version; esmigrate sets
``compatible-with`` to the server's major itself (see ``Cluster``), so an 8.x client drives a 9.x
server and the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

import elastic_transport
import elasticsearch
from elasticsearch.serializer import OrjsonSerializer

from esmigrate.cluster import _exact_json as exact_json
from esmigrate.cluster._errors import api_error, nothing_sent, unreachable
from esmigrate.config import ConnectionSettings
from esmigrate.exceptions import ClusterError, ConfigError, UnsupportedEngine

# Elasticsearch 8 and 9 both accept compatibility with 8; used before the version is known.
_PROBE_HEADERS = {"accept": "application/vnd.elasticsearch+json; compatible-with=8"}


class _OrjsonSerializer(OrjsonSerializer):
    """The elasticsearch client's orjson serializer, with integers beyond 64 bits kept exact."""

    def json_loads(self, data: bytes) -> Any:
        return exact_json.loads(data)

    def json_dumps(self, data: Any) -> bytes:
        return exact_json.dumps(data, default=self.default)


class ElasticsearchClient:
    """esmigrate's requests through an ``elasticsearch.Elasticsearch`` client."""

    engine = "elasticsearch"
    library = "elasticsearch " + version("elasticsearch")

    def __init__(self, raw: Any, *, owned: bool) -> None:
        self.raw = raw
        self._owned = owned

    def send(self, method: str, url: str, headers: Mapping[str, str], body: Any) -> Any:
        return self.raw.perform_request(method, url, headers=headers, body=body).body

    def info(self, where: str) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self.send("GET", "/", _PROBE_HEADERS, None)
        except elasticsearch.UnsupportedProductError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            if (body.get("version") or {}).get("distribution") == "opensearch":
                return body  # OpenSearch: the caller moves to opensearch-py
            raise _not_elasticsearch(where) from None
        except Exception as exc:
            mapped = self.error(exc, "GET", "/", where)
            if mapped is None:
                raise
            raise mapped from None
        return result

    def error(self, exc: Exception, method: str, path: str, where: str) -> ClusterError | None:
        if isinstance(exc, elasticsearch.UnsupportedProductError):
            return _not_elasticsearch(where)
        if isinstance(exc, elastic_transport.TlsError):
            return unreachable("tls", exc, method, path, where)
        if isinstance(exc, elastic_transport.ConnectionTimeout):
            return unreachable("timeout", exc, method, path, where)
        if isinstance(exc, elastic_transport.ConnectionError):
            kind = "connection" if nothing_sent(exc) else "lost"
            return unreachable(kind, exc, method, path, where)
        if isinstance(exc, elasticsearch.ApiError):
            return api_error(exc.meta.status, exc.body, method, path, where)
        if isinstance(exc, elastic_transport.TransportError):
            return unreachable("transport", exc, method, path, where)
        return None

    def refused(self, exc: BaseException) -> bool:
        return (
            isinstance(exc, elastic_transport.ConnectionError)
            and not isinstance(
                exc, (elastic_transport.TlsError, elastic_transport.ConnectionTimeout)
            )
            and nothing_sent(exc)
        )

    def dropped(self, exc: BaseException) -> bool:
        return isinstance(exc, elastic_transport.ConnectionError) and not isinstance(
            exc, elastic_transport.TlsError
        )

    @property
    def owned(self) -> bool:
        return self._owned

    def close(self) -> None:
        if self._owned:
            self.raw.close()


def _not_elasticsearch(where: str) -> UnsupportedEngine:
    return UnsupportedEngine(
        f"The server at {where} answers without the header X-Elastic-Product: Elasticsearch, "
        "so the elasticsearch client refuses it.",
        hint="Is it Elasticsearch 8/9 behind a proxy that drops response headers? Let the header "
        "through. esmigrate supports Elasticsearch 8/9 and OpenSearch 2/3.",
    )


def build(settings: ConnectionSettings) -> ElasticsearchClient:
    kwargs: dict[str, Any] = {
        "request_timeout": settings.request_timeout,
        "max_retries": 0,  # see _opensearch.build
        "retry_on_timeout": False,
        "retry_on_status": (),
        "serializer": _OrjsonSerializer(),
        "verify_certs": settings.verify_certs,
        "ssl_show_warn": settings.verify_certs,
    }
    if settings.cloud_id is not None:
        kwargs["cloud_id"] = settings.cloud_id
    else:
        kwargs["hosts"] = list(settings.urls)
    if settings.username is not None:
        password = settings.password.reveal() if settings.password else ""
        kwargs["basic_auth"] = (settings.username, password)
    if settings.api_key is not None:
        kwargs["api_key"] = settings.api_key.reveal()
    elif settings.bearer_token is not None:
        kwargs["bearer_auth"] = settings.bearer_token.reveal()
    if settings.aws_sigv4:
        raise ConfigError(
            "AWS SigV4 signing is for Amazon OpenSearch Service, but this server is Elasticsearch.",
            hint="Drop --aws-sigv4 for an Elasticsearch cluster; use --api-key or "
            "--username/--password.",
        )
    if settings.ca_certs:
        kwargs["ca_certs"] = settings.ca_certs
    if settings.ssl_assert_fingerprint:
        # The client checks the pinned certificate instead of a CA chain.
        kwargs["ssl_assert_fingerprint"] = settings.ssl_assert_fingerprint
        kwargs["ssl_show_warn"] = False
    if settings.client_cert:
        kwargs["client_cert"] = settings.client_cert
        kwargs["client_key"] = settings.client_key
    return ElasticsearchClient(elasticsearch.Elasticsearch(**kwargs), owned=True)


def wrap(raw: Any) -> ElasticsearchClient:
    """An application's own client, used as it is and never closed here."""
    if not isinstance(raw, elasticsearch.Elasticsearch):
        raise ConfigError(
            f"esmigrate needs a synchronous elasticsearch.Elasticsearch client, not "
            f"{type(raw).__name__}.",
            hint="Pass an elasticsearch.Elasticsearch configured like the application's client.",
        )
    return ElasticsearchClient(raw, owned=False)
