"""One adapter from anything that describes a mapping to the mapping dict, and its normal form.

Accepted everywhere a mapping is expected: a ``Document`` class or instance (``elasticsearch.dsl``
or ``opensearchpy``), an ``Index`` or ``Mapping`` object of either DSL, a plain dict (a mapping,
an index body with ``"mappings"``, or a ``GET /idx/_mapping`` answer), or the name of a live index
or alias together with a :class:`~esmigrate.cluster.Cluster`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import SchemaError

#: Keys that may appear at the top level of a mapping (besides metadata fields ``_source`` ...).
ROOT_KEYS = frozenset(
    {
        "properties",
        "dynamic",
        "dynamic_templates",
        "date_detection",
        "numeric_detection",
        "dynamic_date_formats",
        "runtime",
        "subobjects",
    }
)


def _looks_like_mapping(value: Mapping[str, Any]) -> bool:
    return all(key in ROOT_KEYS or key.startswith("_") for key in value)


def mapping_of(obj: Any, cluster: Cluster | None = None) -> dict[str, Any]:
    """The mapping (``{"properties": ..., "dynamic": ...}``) that ``obj`` describes.

    For a live index name, all concrete indices behind it must share one mapping (after
    normalisation); otherwise the error names them. Returns a fresh dict.
    """
    if isinstance(obj, str):
        if cluster is None:
            raise SchemaError(
                f"{obj!r} names an index, but no cluster was given to read its mapping from.",
                hint="Pass the Cluster too: mapping_of('posts', cluster).",
            )
        return live_mapping(cluster, obj)
    doc_type = getattr(obj, "_doc_type", None)
    if doc_type is not None and hasattr(doc_type, "mapping"):
        result: dict[str, Any] = doc_type.mapping.to_dict()
        return result
    if hasattr(obj, "to_dict") and hasattr(obj, "_doc_types") and hasattr(obj, "_name"):
        # An Index of either DSL: its mapping merges the documents registered on it.
        body = obj.to_dict()
        mappings: dict[str, Any] = body.get("mappings") or {}
        return mappings
    if hasattr(obj, "to_dict") and hasattr(obj, "properties") and not isinstance(obj, Mapping):
        mapping: dict[str, Any] = obj.to_dict()  # a DSL Mapping object
        return mapping
    if isinstance(obj, Mapping):
        value = copy.deepcopy(dict(obj))
        if "mappings" in value and isinstance(value["mappings"], Mapping):
            return dict(value["mappings"])
        if (
            len(value) == 1
            and isinstance(next(iter(value.values())), Mapping)
            and "mappings" in next(iter(value.values()))
        ):
            # GET /idx/_mapping answer for one index.
            return dict(next(iter(value.values()))["mappings"])
        if _looks_like_mapping(value):
            return value
        raise SchemaError(
            "This dict is not a mapping: unknown top-level keys "
            + ", ".join(sorted(k for k in value if k not in ROOT_KEYS and not k.startswith("_")))
            + ".",
            hint='Pass a mapping ({"properties": {...}}) or an index body ({"mappings": {...}}).',
        )
    raise SchemaError(
        f"Cannot read a mapping from {type(obj).__name__}.",
        hint="Pass a Document class, an Index, a mapping dict, or an index name with a cluster.",
    )


def live_mapping(cluster: Cluster, index: str) -> dict[str, Any]:
    """The mapping of a live index (or of every index behind an alias, when they agree)."""
    from esmigrate.schema.diff import normalize_mapping

    answer = cluster.request("GET", f"/{index}/_mapping")
    if not answer:
        raise SchemaError(f"No index matches {index!r}.")
    names = sorted(answer)
    first: dict[str, Any] = answer[names[0]].get("mappings") or {}
    differing = [
        name
        for name in names[1:]
        if normalize_mapping(answer[name].get("mappings") or {}) != normalize_mapping(first)
    ]
    if differing:
        raise SchemaError(
            f"{index!r} covers indices with different mappings: {names[0]} differs from "
            + ", ".join(differing)
            + ".",
            hint="Name one concrete index.",
        )
    return first


def index_name_of(obj: Any) -> str | None:
    """The index name a Document class (``class Index: name = ...``) or Index object declares."""
    index = getattr(obj, "_index", None)
    name = getattr(index, "_name", None) if index is not None else getattr(obj, "_name", None)
    if isinstance(name, str) and name and name != "*":
        return name
    return None
