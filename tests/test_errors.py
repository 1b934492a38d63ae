from __future__ import annotations

from typing import Any

import elastic_transport
import opensearchpy
import pytest
from urllib3.exceptions import NewConnectionError, ProtocolError

from esmigrate.cluster import Capabilities, lost_with_node, parse_engine, server_reason
from esmigrate.cluster._cluster import is_read
from esmigrate.cluster._errors import api_error, nothing_sent
from esmigrate.cluster._opensearch import OpenSearchClient
from esmigrate.exceptions import (
    AuthenticationError,
    BlockedError,
    ClusterUnavailable,
    ConflictError,
    EsmigrateError,
    NotFoundError,
    RequestError,
    UnsupportedEngine,
)

MAPPER_ERROR = {
    "error": {
        "root_cause": [
            {
                "type": "illegal_argument_exception",
                "reason": "mapper [title] cannot be changed from type [text] to [keyword]",
            }
        ],
        "type": "illegal_argument_exception",
        "reason": "mapper [title] cannot be changed from type [text] to [keyword]",
    },
    "status": 400,
}


def test_root_cause_is_what_the_user_sees() -> None:
    err = api_error(400, MAPPER_ERROR, "PUT", "/posts/_mapping", "http://h:9200")
    assert type(err) is RequestError
    assert "cannot be changed from type [text] to [keyword]" in str(err)
    assert err.error_type == "illegal_argument_exception"
    assert err.status == 400


@pytest.mark.parametrize(
    ("status", "etype", "cls"),
    [
        (404, "index_not_found_exception", NotFoundError),
        (409, "version_conflict_engine_exception", ConflictError),
        (403, "cluster_block_exception", BlockedError),
        (403, "security_exception", AuthenticationError),
        (401, "security_exception", AuthenticationError),
    ],
)
def test_status_classes(status: int, etype: str, cls: type[EsmigrateError]) -> None:
    body = {"error": {"root_cause": [{"type": etype, "reason": "r"}], "type": etype, "reason": "r"}}
    err = api_error(status, body, "GET", "/x", "http://h:9200")
    assert type(err) is cls
    assert isinstance(err, EsmigrateError)


def test_reason_from_odd_bodies() -> None:
    assert server_reason("plain text") == (None, "plain text")
    assert server_reason({"error": "no handler"}) == (None, "no handler")
    assert server_reason(None) == (None, None)
    nested = {
        "error": {
            "type": "search_phase_execution_exception",
            "reason": "all shards failed",
            "caused_by": {"type": "x", "reason": "too many clauses"},
        }
    }
    assert server_reason(nested) == (
        "search_phase_execution_exception",
        "all shards failed: too many clauses",
    )


def test_engine_detection() -> None:
    os_info = {"cluster_name": "c", "version": {"distribution": "opensearch", "number": "2.19.6"}}
    assert parse_engine(os_info).name == "opensearch"
    assert parse_engine(os_info).version == (2, 19, 6)
    es_info = {
        "cluster_name": "c",
        "version": {"number": "9.1.0"},
        "tagline": "You Know, for Search",
    }
    assert parse_engine(es_info).name == "elasticsearch"
    with pytest.raises(UnsupportedEngine, match=r"Elasticsearch 7\.17\.0"):
        parse_engine({"version": {"number": "7.17.0"}, "tagline": "You Know, for Search"})
    with pytest.raises(UnsupportedEngine, match=r"OpenSearch 1\.3\.0"):
        parse_engine({"version": {"distribution": "opensearch", "number": "1.3.0"}})
    with pytest.raises(UnsupportedEngine, match="does not identify"):
        parse_engine({"version": {"number": "9.0.0"}, "tagline": "something else"})


@pytest.mark.parametrize(
    ("distribution", "number", "point_in_time", "shard_doc"),
    [
        ("opensearch", "2.3.0", None, False),
        ("opensearch", "2.4.0", "opensearch", False),
        ("opensearch", "2.19.6", "opensearch", False),
        ("opensearch", "3.2.0", "opensearch", False),
        ("opensearch", "3.3.0", "opensearch", True),
        ("opensearch", "3.9.0", "opensearch", True),
        (None, "8.0.0", "elasticsearch", True),
        (None, "9.1.0", "elasticsearch", True),
    ],
)
def test_capabilities_follow_engine_and_version(
    distribution: str | None, number: str, point_in_time: str | None, shard_doc: bool
) -> None:
    info: dict[str, Any] = {"version": {"distribution": distribution, "number": number}}
    if distribution is None:
        info = {"version": {"number": number}, "tagline": "You Know, for Search"}
    capabilities = Capabilities.of(parse_engine(info))
    assert capabilities.point_in_time == point_in_time
    assert capabilities.shard_doc is shard_doc


# -- connection errors: what may be sent again ---------------------------------------------------


def _opensearch_errors() -> dict[str, Exception]:
    refused = NewConnectionError(None, "Failed to establish a new connection")  # type: ignore[arg-type]
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    reset = ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer"))
    return {
        "refused": opensearchpy.ConnectionError("N/A", str(refused), refused),
        "reset": opensearchpy.ConnectionError("N/A", str(reset), reset),
        "timeout": opensearchpy.ConnectionTimeout("TIMEOUT", "read timed out", None),
    }


def test_only_a_connection_never_made_is_sent_again_blindly() -> None:
    errors = _opensearch_errors()
    adapter = OpenSearchClient(object(), owned=False)
    assert nothing_sent(errors["refused"])
    assert not nothing_sent(errors["reset"])
    assert [adapter.refused(errors[k]) for k in ("refused", "reset", "timeout")] == [
        True,
        False,
        False,
    ]
    # A read may be sent again after a dropped connection, not after a timeout.
    assert [adapter.dropped(errors[k]) for k in ("refused", "reset", "timeout")] == [
        True,
        True,
        False,
    ]


def test_elasticsearch_transport_errors_are_told_apart_the_same_way() -> None:
    refused = NewConnectionError(None, "Failed to establish a new connection")  # type: ignore[arg-type]
    inner = elastic_transport.ConnectionError(str(refused), errors=(refused,))
    outer = elastic_transport.ConnectionError("x", errors=(inner,))
    reset = elastic_transport.ConnectionError("x", errors=(ProtocolError("Connection aborted."),))
    assert nothing_sent(outer)
    assert not nothing_sent(reset)


def test_a_lost_connection_says_the_request_may_have_been_applied() -> None:
    errors = _opensearch_errors()
    adapter = OpenSearchClient(object(), owned=False)
    lost = adapter.error(errors["reset"], "POST", "/_aliases", "http://h:9200")
    assert isinstance(lost, ClusterUnavailable)
    assert "lost before the cluster answered POST /_aliases" in str(lost)
    assert "may or may not have been applied" in str(lost)
    refused = adapter.error(errors["refused"], "POST", "/_aliases", "http://h:9200")
    assert "Cannot connect" in str(refused)


@pytest.mark.parametrize(
    ("method", "path", "read"),
    [
        ("GET", "/posts/_doc/1", True),
        ("HEAD", "/posts", True),
        ("POST", "/posts/_search", True),
        ("POST", "/_msearch", True),
        ("POST", "/posts/_count", True),
        ("POST", "/posts/_mget", True),
        ("POST", "/posts/_refresh", True),
        ("POST", "/_search/scroll", True),
        ("POST", "/_bulk", False),
        ("POST", "/_aliases", False),
        ("PUT", "/posts/_doc/1", False),
        ("POST", "/posts/_search/point_in_time", False),
        ("POST", "/_reindex", False),
        ("DELETE", "/posts", False),
    ],
)
def test_which_requests_only_read(method: str, path: str, read: bool) -> None:
    assert is_read(method, path) is read


SEARCH_CONTEXT_LOST = {
    "type": "search_phase_execution_exception",
    "reason": "all shards failed",
    "phase": "query",
    "grouped": True,
    "failed_shards": [
        {
            "shard": -1,
            "index": None,
            "reason": {
                "type": "search_context_missing_exception",
                "reason": "No search context found for id [3]",
            },
        }
    ],
    "caused_by": {
        "type": "search_context_missing_exception",
        "reason": "No search context found for id [3]",
    },
}


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (SEARCH_CONTEXT_LOST, True),
        ({"type": "node_closed_exception", "reason": "node closed {n2}"}, True),
        (
            {
                "type": "remote_transport_exception",
                "reason": "[n2][indices:data/read/search]",
                "caused_by": {"type": "no_shard_available_action_exception", "reason": "..."},
            },
            True,
        ),
        # A wrapper alone says nothing about why: not taken as lost.
        ({"type": "search_phase_execution_exception", "reason": "all shards failed"}, False),
        # One shard lost its context, another failed on the query: the query is wrong.
        (
            {
                **SEARCH_CONTEXT_LOST,
                "failed_shards": [
                    *SEARCH_CONTEXT_LOST["failed_shards"],  # type: ignore[misc]
                    {"reason": {"type": "query_shard_exception", "reason": "bad field"}},
                ],
            },
            False,
        ),
        ({"type": "script_exception", "reason": "compile error"}, False),
        (None, False),
    ],
)
def test_a_task_error_is_lost_with_a_node_only_when_every_cause_says_so(
    error: Any, lost: bool
) -> None:
    assert lost_with_node(error) is lost
