from __future__ import annotations

import pytest

from esmigrate._redact import MASK, redact
from esmigrate.cluster import Cluster
from esmigrate.state import HistoryStore


def test_secrets_are_masked_at_any_depth() -> None:
    answer = {
        "id": "k1",
        "api_key": "abc",
        "encoded": "ZW5j",
        "nested": [{"password": "pw", "title": "ok"}, {"client_secret": None}],
        "tokens": 3,
    }
    out = redact(answer)
    assert out["id"] == "k1"
    assert out["api_key"] == MASK
    assert out["encoded"] == MASK
    assert out["nested"][0] == {"password": MASK, "title": "ok"}
    assert out["nested"][1] == {"client_secret": None}
    assert (
        out["tokens"] == MASK
    )  # a count under a secret-looking key is masked too: err on the safe side
    assert answer["api_key"] == "abc"  # the input is left alone


@pytest.mark.integration
def test_history_never_stores_a_secret(cluster: Cluster, prefix: str) -> None:
    store = HistoryStore(cluster, f"{prefix}-hist")
    store.ensure()
    version = store.create("r1", {"kind": "revision", "log": [{"returned": {"api_key": "s3cr3t"}}]})
    store.replace(
        "r1", {"kind": "revision", "log": [{"request": {"body": {"password": "pw9"}}}]}, version
    )
    raw = cluster.request("GET", f"/{prefix}-hist/_doc/r1")
    assert "s3cr3t" not in str(raw)
    assert "pw9" not in str(raw)
    assert raw["_source"]["log"][0]["request"]["body"]["password"] == MASK
