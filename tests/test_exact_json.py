"""Numbers survive a copy digit for digit: orjson alone turns integers beyond 64 bits into floats
(silently) and refuses to write them back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from esmigrate.cluster import Cluster, exact_json

HUGE = 123456789012345678901234567890
TEXT = b'{"big": 123456789012345678901234567890, "neg": -9223372036854775809, "u64": 18446744073709551615, "f": 1.5}'


def test_integers_beyond_64_bits_round_trip_exactly() -> None:
    doc = exact_json.loads(TEXT)
    assert doc == {"big": HUGE, "neg": -9223372036854775809, "u64": 18446744073709551615, "f": 1.5}
    assert json.loads(exact_json.dumps(doc)) == doc
    # The fast path stays for everything else, and strings of digits are left alone.
    assert exact_json.loads(b'{"id": "12345678901234567890123", "n": 7}') == {
        "id": "12345678901234567890123",
        "n": 7,
    }
    assert exact_json.dumps({"n": 7, "s": "é"}) == '{"n":7,"s":"é"}'.encode()


@pytest.mark.parametrize(
    "text",
    [
        b"123456789012345678901",  # the whole text
        b"[-123456789012345678901]",
        b'{"a": [1, 2, 98765432109876543210]}',
        b'{"a": 1.5, "b": 0, "c": 100000000000000000000}',
        b'{"t": "tail", "x": 36893488147419103232}',
    ],
)
def test_an_integer_beyond_64_bits_is_exact_wherever_it_stands(text: bytes) -> None:
    assert exact_json.loads(text) == json.loads(text)
    assert exact_json.loads(text.decode()) == json.loads(text)


def test_other_unserialisable_values_still_raise() -> None:
    with pytest.raises(TypeError):
        exact_json.dumps({"x": object()})


@pytest.mark.integration
def test_a_python_transform_copies_a_huge_integer_exactly(cluster: Cluster, prefix: str) -> None:
    from esmigrate.migrate import BlueGreen

    alias, index = f"{prefix}-nums", f"{prefix}-nums-v1"
    cluster.request(
        "PUT",
        f"/{index}",
        body={
            "settings": {"number_of_replicas": 0},
            # An object that is not indexed: _source keeps whatever JSON it was given.
            "mappings": {"properties": {"raw": {"type": "object", "enabled": False}}},
            "aliases": {alias: {"is_write_index": True}},
        },
    )
    cluster.request(
        "PUT",
        f"/{index}/_doc/1",
        params={"refresh": "true"},
        body=b'{"raw": {"big": 123456789012345678901234567890}, "n": 1}',
    )

    def touch(doc: dict[str, Any]) -> dict[str, Any]:
        doc["n"] += 1
        return doc

    result = BlueGreen(
        cluster,
        alias,
        {"properties": {"raw": {"type": "object", "enabled": False}, "n": {"type": "long"}}},
        settings={"number_of_replicas": 0},
        transform=touch,
        state_index=f"{prefix}-hist",
        dead_letter_index=f"{prefix}-dl",
    ).run()

    doc = cluster.request("GET", f"/{result.target}/_doc/1")["_source"]
    assert doc == {"raw": {"big": HUGE}, "n": 2}
