"""The documents a benchmark copies: two shapes, each with its transform written twice (Python
for copy mode python and the client helpers, painless for ``_reindex``)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from esmigrate.cluster import Cluster, iter_bulk_errors
from esmigrate.exceptions import RequestError

ShapeName = Literal["post", "product"]

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "search",
    "index",
    "shard",
    "mapping",
    "alias",
    "migrate",
    "schema",
    "version",
]


def _post(i: int, rng: random.Random) -> dict[str, Any]:
    return {
        "title": f"  Post {i} {rng.choice(WORDS).upper()} ",
        "body": " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 80))),
        "author": f"user{rng.randint(1, 500)}",
        "views": rng.randint(0, 10_000),
    }


def _post_transform(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    out["title"] = doc["title"].strip().lower()
    out["word_count"] = len(doc["body"].split())
    return out


def _product(i: int, rng: random.Random) -> dict[str, Any]:
    return {
        "name": f"  Product {i} {rng.choice(WORDS).title()} ",
        "description": " ".join(rng.choice(WORDS) for _ in range(rng.randint(100, 250))),
        "sku": f"SKU-{i:08d}",
        "price_cents": rng.randint(100, 100_000),
        "stock": rng.randint(0, 500),
        "tags": [rng.choice(WORDS).upper() for _ in range(rng.randint(2, 6))],
        "attributes": {
            "colour": rng.choice(["red", "green", "blue", "black"]),
            "size": rng.choice(["S", "M", "L", "XL"]),
            "weight_g": rng.randint(50, 5000),
        },
        "reviews": [
            {"user": f"user{rng.randint(1, 500)}", "stars": rng.randint(1, 5)}
            for _ in range(rng.randint(0, 5))
        ],
    }


def _product_transform(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    out["name"] = doc["name"].strip()
    out["price"] = out.pop("price_cents") / 100.0
    out["tags"] = [t.lower() for t in doc["tags"]]
    return out


def live_post(n: int, rng: random.Random) -> dict[str, Any]:
    """A post the live writer creates (``--writers``): already in the shape the transform
    gives the fields it keeps, so the index holds what the writer wrote."""
    doc = _post(n, rng)
    doc["title"] = doc["title"].strip().lower()
    return doc


def live_post_update(doc_id: str, edit: int, rng: random.Random) -> dict[str, Any]:
    """The live writer's update of a post: its view counter (the edit number)."""
    return {"views": edit}


def live_product(n: int, rng: random.Random) -> dict[str, Any]:
    """A product the live writer creates, its name and tags already as the transform leaves them."""
    doc = _product(n, rng)
    doc["name"] = doc["name"].strip()
    doc["tags"] = [t.lower() for t in doc["tags"]]
    return doc


def live_product_update(doc_id: str, edit: int, rng: random.Random) -> dict[str, Any]:
    """The live writer's update of a product: its stock (the edit number)."""
    return {"stock": edit}


@dataclass(frozen=True)
class Shape:
    """A document shape: how to make one, its mappings before and after, its transform twice,
    and what the live writer of ``--writers`` writes (``module:function`` references, run in
    the writer's process) and may compare afterwards (``kept``: the fields the transform does
    not rewrite)."""

    name: ShapeName
    make: Callable[[int, random.Random], dict[str, Any]]
    transform: Callable[[dict[str, Any]], dict[str, Any]]
    painless: str
    source_mapping: dict[str, Any]
    target_mapping: dict[str, Any]
    live_document: str
    live_update: str
    kept: tuple[str, ...]


_POST_MAPPING: dict[str, Any] = {
    "properties": {
        "title": {"type": "text"},
        "body": {"type": "text"},
        "author": {"type": "keyword"},
        "views": {"type": "integer"},
    }
}
_PRODUCT_MAPPING: dict[str, Any] = {
    "properties": {
        "name": {"type": "text"},
        "description": {"type": "text"},
        "sku": {"type": "keyword"},
        "price_cents": {"type": "long"},
        "stock": {"type": "integer"},
        "tags": {"type": "keyword"},
        "attributes": {
            "properties": {
                "colour": {"type": "keyword"},
                "size": {"type": "keyword"},
                "weight_g": {"type": "integer"},
            }
        },
        "reviews": {
            "properties": {"user": {"type": "keyword"}, "stars": {"type": "byte"}},
        },
    }
}

SHAPES: dict[ShapeName, Shape] = {
    "post": Shape(
        "post",
        _post,
        _post_transform,
        "ctx._source.title = ctx._source.title.trim().toLowerCase();"
        " ctx._source.word_count = / +/.split(ctx._source.body.trim()).length;",
        _POST_MAPPING,
        {"properties": {**_POST_MAPPING["properties"], "word_count": {"type": "integer"}}},
        f"{__name__}:live_post",
        f"{__name__}:live_post_update",
        ("title", "body", "author", "views"),
    ),
    "product": Shape(
        "product",
        _product,
        _product_transform,
        "ctx._source.name = ctx._source.name.trim();"
        " ctx._source.price = ctx._source.remove('price_cents') / 100.0;"
        " List t = new ArrayList(); for (def x : ctx._source.tags) { t.add(x.toLowerCase()); }"
        " ctx._source.tags = t;",
        _PRODUCT_MAPPING,
        {
            "properties": {
                **{k: v for k, v in _PRODUCT_MAPPING["properties"].items() if k != "price_cents"},
                "price": {"type": "double"},
            }
        },
        f"{__name__}:live_product",
        f"{__name__}:live_product_update",
        ("name", "description", "sku", "stock", "tags", "attributes", "reviews"),
    ),
}


def _lines(shape: Shape, index: str, n: int) -> Iterator[bytes]:
    rng = random.Random(7)  # the same documents in every run
    for i in range(n):
        yield orjson.dumps({"index": {"_index": index, "_id": str(i)}}) + b"\n"
        yield orjson.dumps(shape.make(i, rng)) + b"\n"


def make_source(
    cluster: Cluster, index: str, n: int, shape: Shape | None = None, *, shards: int = 2
) -> None:
    """Create ``index`` with ``n`` documents of ``shape`` (default: blog posts); memory stays
    one bulk request whatever ``n``."""
    shape = shape or SHAPES["post"]
    cluster.request(
        "PUT",
        f"/{index}",
        body={
            "settings": {
                "number_of_shards": shards,
                "number_of_replicas": 0,
                "refresh_interval": "-1",
            },
            "mappings": shape.source_mapping,
        },
    )
    batch: list[bytes] = []
    for line in _lines(shape, index, n):
        batch.append(line)
        if len(batch) == 4000:
            _send(cluster, batch)
    if batch:
        _send(cluster, batch)
    cluster.request("PUT", f"/{index}/_settings", body={"index.refresh_interval": "1s"})
    cluster.refresh(index)


def _send(cluster: Cluster, batch: list[bytes]) -> None:
    result = cluster.bulk(b"".join(batch))
    batch.clear()
    for _, detail in iter_bulk_errors(result):
        raise RequestError(
            f"The benchmark's source index refused a document: {detail.get('error')}",
            status=int(detail.get("status", 500)),
        )
