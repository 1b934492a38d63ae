from __future__ import annotations

from typing import Any

import pytest

from esmigrate.cluster import Capabilities, parse_engine, server_reason
from esmigrate.cluster._errors import api_error
from esmigrate.exceptions import (
    AuthenticationError,
    BlockedError,
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
