"""Contract tests: the exact requests esmigrate sends to an Elasticsearch 8 and 9 cluster.

No Elasticsearch runs here, so these are request-shape tests, not behaviour tests (the embedded
OpenSearch node tests behaviour). A local server answers like Elasticsearch (``X-Elastic-Product``
included) and records each request; the tests assert method, path, query, headers and body
against the Elasticsearch REST specification. Paths below are in the elastic/elasticsearch
repository; ``spec/`` stands for ``rest-api-spec/src/main/resources/rest-api-spec/api/``.
They run with whichever client generation is installed (elasticsearch 9.x in the main
environment, 8.x in the older-client one).
"""

from __future__ import annotations

import base64
import hashlib
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings, Secret
from esmigrate.exceptions import AuthenticationError, ClusterUnavailable, UnsupportedEngine
from tests import servers
from tests.servers import Request, Response

VERSIONS = {8: "8.15.3", 9: "9.1.4"}

PIT_HITS = [
    {"_index": "posts", "_id": "1", "_source": {"n": 1}, "sort": [0, 11]},
    {"_index": "posts", "_id": "2", "_source": {"n": 2}, "sort": [0, 12]},
]

# The 403 Elasticsearch's security sends for a missing privilege: the message of
# x-pack/plugin/security/src/main/java/org/elasticsearch/xpack/security/authz/AuthorizationDenialMessages.java
# in the error body every ElasticsearchException renders (server/src/main/java/org/elasticsearch/
# ElasticsearchException.java: error.root_cause[], error.type, error.reason, status).
DENIED_REASON = (
    "action [indices:admin/create] is unauthorized for user [reader] with effective roles "
    "[viewer] on indices [secured], this action is granted by the index privileges "
    "[create_index,manage,all]"
)
# The 401 of x-pack/plugin/core/src/main/java/org/elasticsearch/xpack/core/security/authc/
# DefaultAuthenticationFailureHandler.java: security_exception with a WWW-Authenticate header.
UNAUTHENTICATED = {
    "type": "security_exception",
    "reason": "unable to authenticate with provided credentials and anonymous access is not "
    "allowed for this request",
    "header": {"WWW-Authenticate": ['Basic realm="security" charset="UTF-8"', "ApiKey"]},
}


def security_error(status: int, cause: dict[str, Any]) -> dict[str, Any]:
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def fake_elasticsearch(
    major: int, *, product_header: bool = True, api_key: str | None = None
) -> servers.Answer:
    """Answers like Elasticsearch ``major`` for the requests these tests make."""
    product = {"X-Elastic-Product": "Elasticsearch"} if product_header else {}

    def answer(request: Request) -> Response:
        path, _, _query = request.path.partition("?")
        if api_key is not None and request.headers.get("authorization") != f"ApiKey {api_key}":
            return Response.of_json(401, security_error(401, UNAUTHENTICATED), **product)
        if request.method == "GET" and path == "/":
            # spec/info.json; the body is what GET / answers (version.number, tagline).
            return Response.of_json(
                200,
                {
                    "name": "es01",
                    "cluster_name": "contract",
                    "version": {
                        "number": VERSIONS.get(major, f"{major}.0.0"),
                        "build_flavor": "default",
                    },
                    "tagline": "You Know, for Search",
                },
                **product,
            )
        if request.method == "POST" and path.endswith("/_pit"):
            return Response.of_json(200, {"id": "pit-a"}, **product)
        if request.method == "POST" and path == "/_search":
            # Elasticsearch may return a new point-in-time id with any page.
            hits = [] if "search_after" in request.json() else PIT_HITS
            return Response.of_json(200, {"pit_id": "pit-b", "hits": {"hits": hits}}, **product)
        if request.method == "DELETE" and path == "/_pit":
            return Response.of_json(200, {"succeeded": True, "num_freed": 1}, **product)
        if path.endswith("/_count"):
            return Response.of_json(200, {"count": 2}, **product)
        if path == "/_bulk":
            items = [{"index": {"_index": "posts", "_id": "1", "status": 201}}]
            return Response.of_json(200, {"errors": False, "items": items}, **product)
        if path == "/_msearch":
            ok = {"hits": {"hits": []}, "_shards": {"total": 1, "failed": 0}, "status": 200}
            return Response.of_json(200, {"responses": [ok]}, **product)
        if path == "/secured":
            cause = {"type": "security_exception", "reason": DENIED_REASON}
            return Response.of_json(403, security_error(403, cause), **product)
        if path == "/expired":
            return Response.of_json(401, security_error(401, UNAUTHENTICATED), **product)
        if request.method == "PUT" and "/_doc/" in path:
            index, _, doc_id = path.strip("/").partition("/_doc/")
            result = {"_index": index, "_id": doc_id, "_version": 1, "result": "created"}
            result.update({"_seq_no": 0, "_primary_term": 1, "_shards": {"total": 1}})
            return Response.of_json(201, result, **product)
        return Response.of_json(404, {"error": {"type": "not_found"}, "status": 404}, **product)

    return answer


def compat(major: int, kind: str = "json") -> str:
    return f"application/vnd.elasticsearch+{kind}; compatible-with={major}"


@pytest.fixture(params=[8, 9], ids=["es8", "es9"])
def major(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def es(major: int) -> Iterator[servers.LocalServer]:
    with servers.serving(fake_elasticsearch(major)) as server:
        yield server


@pytest.fixture
def cluster_of(es: servers.LocalServer) -> Iterator[Cluster]:
    with connect(ConnectionSettings(urls=(es.url,))) as cluster:
        del es.requests[:]  # the tests below read what follows the connection
        yield cluster


def sent(server: servers.LocalServer) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in server.requests]


# -- detection and the compatibility headers -----------------------------------------------------


def test_connect_detects_the_version_and_uses_the_elasticsearch_client(
    es: servers.LocalServer, major: int
) -> None:
    with connect(ConnectionSettings(urls=(es.url,))) as cluster:
        assert cluster.engine.name == "elasticsearch"
        assert cluster.engine.major == major
        assert cluster.client_library.startswith("elasticsearch ")
    # The elasticsearch client's own GET / (spec/info.json) asks for compatibility with 8, which
    # 8.x and 9.x servers both accept (docs/reference/elasticsearch/rest-apis/compatibility.md).
    last = es.requests[-1]
    assert (last.method, last.path) == ("GET", "/")
    assert last.headers["accept"] == compat(8)


def test_requests_carry_the_compatibility_of_the_server_major(
    es: servers.LocalServer, cluster_of: Cluster, major: int
) -> None:
    # docs/reference/elasticsearch/rest-apis/compatibility.md: Accept and Content-Type name the
    # version ("application/vnd.elasticsearch+json;compatible-with=8"); spec/count.json.
    assert cluster_of.count("posts", {"match_all": {}}) == 2
    (request,) = es.requests
    assert (request.method, request.path) == ("POST", "/posts/_count")
    assert request.headers["accept"] == compat(major)
    assert request.headers["content-type"] == compat(major)
    assert request.json() == {"query": {"match_all": {}}}


def test_bulk_and_msearch_are_ndjson_with_the_compatibility_header(
    es: servers.LocalServer, cluster_of: Cluster, major: int
) -> None:
    # spec/bulk.json and spec/msearch.json: content_type application/x-ndjson, whose compatible
    # form is application/vnd.elasticsearch+x-ndjson.
    body = b'{"index":{"_index":"posts","_id":"1"}}\n{"n":1}\n'
    assert not cluster_of.bulk(body, refresh="wait_for")["errors"]
    cluster_of.msearch([({"index": "posts", "preference": "_shards:0"}, {"size": 0})])
    bulk, msearch = es.requests
    assert (bulk.method, bulk.path) == ("POST", "/_bulk?refresh=wait_for")
    assert bulk.headers["content-type"] == compat(major, "x-ndjson")
    assert bulk.headers["accept"] == compat(major)
    assert bulk.body == body
    assert (msearch.method, msearch.path) == ("POST", "/_msearch")
    assert msearch.headers["content-type"] == compat(major, "x-ndjson")
    assert msearch.ndjson() == [{"index": "posts", "preference": "_shards:0"}, {"size": 0}]


# -- point in time ---------------------------------------------------------------------------


def test_a_scan_opens_pages_and_closes_an_elasticsearch_point_in_time(
    es: servers.LocalServer, cluster_of: Cluster, major: int
) -> None:
    pages = list(cluster_of.scan("posts", page_size=2))
    assert [[hit["_id"] for hit in page] for page in pages] == [["1", "2"]]
    assert sent(es) == [
        # spec/open_point_in_time.json: POST /{index}/_pit, keep_alive required.
        ("POST", "/posts/_pit?keep_alive=5m"),
        # spec/search.json: a search with a point in time names no index in its path.
        ("POST", "/_search"),
        ("POST", "/_search"),
        # spec/close_point_in_time.json: DELETE /_pit with the id in the body.
        ("DELETE", "/_pit"),
    ]
    first, second = es.requests[1].json(), es.requests[2].json()
    assert first == {
        "pit": {"id": "pit-a", "keep_alive": "5m"},
        "size": 2,
        "sort": [{"_shard_doc": "asc"}],
        "track_total_hits": False,
    }
    # The id the last answer gave is the one to use next, and to close.
    assert second == {**first, "pit": {"id": "pit-b", "keep_alive": "5m"}, "search_after": [0, 12]}
    assert es.requests[3].json() == {"id": "pit-b"}
    assert all(r.headers["accept"] == compat(major) for r in es.requests)


# -- X-Elastic-Product and unsupported versions ------------------------------------------------


def test_a_server_without_the_product_header_is_refused_at_connect() -> None:
    # server/src/main/java/org/elasticsearch/rest/RestController.java sends
    # "X-elastic-product: Elasticsearch" on every answer; the elasticsearch client insists on it.
    with (
        servers.serving(fake_elasticsearch(9, product_header=False)) as server,
        pytest.raises(UnsupportedEngine, match="X-Elastic-Product: Elasticsearch"),
    ):
        connect(ConnectionSettings(urls=(server.url,)))


def test_elasticsearch_7_is_refused() -> None:
    with (
        servers.serving(fake_elasticsearch(7)) as server,
        pytest.raises(UnsupportedEngine, match=r"Elasticsearch 7\.0\.0 is not supported"),
    ):
        connect(ConnectionSettings(urls=(server.url,)))


# -- security exceptions ---------------------------------------------------------------------


def test_a_missing_privilege_is_an_authentication_error_with_the_servers_reason(
    cluster_of: Cluster,
) -> None:
    with pytest.raises(AuthenticationError) as caught:
        cluster_of.request("PUT", "/secured", body={})
    assert caught.value.status == 403
    assert caught.value.exit_code == 4
    assert DENIED_REASON in str(caught.value)


def test_credentials_refused_halfway_are_an_authentication_error(cluster_of: Cluster) -> None:
    with pytest.raises(AuthenticationError, match=r"refused the credentials \(401\)") as caught:
        cluster_of.request("GET", "/expired")
    assert caught.value.status == 401


# -- Elastic Cloud: cloud_id + API key, and certificate pinning --------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ssl.SSLContext, str]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    return str(path), context, hashlib.sha256(der).hexdigest()


def local_cloud_id(port: int) -> str:
    """A cloud id whose deployment URL is https://127.0.0.1:port: host "0.0.1", id "127"."""
    return "local:" + base64.b64encode(f"0.0.1:{port}$127$kibana".encode()).decode()


def test_cloud_id_and_api_key(tls: tuple[str, ssl.SSLContext, str], major: int) -> None:
    ca_path, context, _ = tls
    key = "a2V5aWQ6c2VjcmV0"
    with servers.serving(fake_elasticsearch(major, api_key=key), tls=context) as server:
        settings = ConnectionSettings(
            cloud_id=local_cloud_id(server.port), api_key=Secret(key), ca_certs=ca_path
        )
        assert settings.display_url == f"https://127.0.0.1:{server.port}"
        with connect(settings) as cluster:
            assert cluster.engine.major == major
            assert cluster.count("posts") == 2
        # Only the elasticsearch client is used for a cloud id (no probe with another client).
        assert sent(server) == [("GET", "/"), ("POST", "/posts/_count")]
        assert {r.headers["authorization"] for r in server.requests} == {f"ApiKey {key}"}
        assert key not in repr(settings)


def test_a_wrong_api_key_is_refused(tls: tuple[str, ssl.SSLContext, str]) -> None:
    ca_path, context, _ = tls
    with servers.serving(fake_elasticsearch(9, api_key="right"), tls=context) as server:
        settings = ConnectionSettings(
            cloud_id=local_cloud_id(server.port), api_key=Secret("wrong"), ca_certs=ca_path
        )
        with pytest.raises(AuthenticationError) as caught:
            connect(settings)
        assert caught.value.status == 401
        assert "wrong" not in str(caught.value)


def test_fingerprint_pinning_with_the_elasticsearch_client(
    tls: tuple[str, ssl.SSLContext, str],
) -> None:
    _, context, fingerprint = tls
    with servers.serving(fake_elasticsearch(9, api_key="k"), tls=context) as server:
        pinned = ConnectionSettings(
            cloud_id=local_cloud_id(server.port),
            api_key=Secret("k"),
            ssl_assert_fingerprint=fingerprint,
        )
        with connect(pinned) as cluster:
            assert cluster.engine.major == 9
        wrong = ConnectionSettings(
            cloud_id=local_cloud_id(server.port),
            api_key=Secret("k"),
            ssl_assert_fingerprint="ab" * 32,
        )
        seen = len(server.requests)
        with pytest.raises(ClusterUnavailable):
            connect(wrong)
        assert len(server.requests) == seen
