"""Which schema versions the documents of an index carry, and how many of each."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.exceptions import InvalidVersion
from esmigrate.schema.documents import VERSION_FIELD
from esmigrate.schema.versions import SchemaVersion

_PAGE = 500


@dataclass(frozen=True)
class VersionCounts:
    """Documents per stored ``schema_version`` value in an index (or alias / pattern).

    ``counts`` maps each stored value (as written, e.g. ``"1.0"``) to its number of documents;
    ``missing`` counts documents without a version.
    """

    index: str
    counts: dict[str, int]
    missing: int
    #: Concrete indices where the field is not indexed, so values were read from ``_source``.
    from_source: tuple[str, ...] = field(default=())

    @property
    def total(self) -> int:
        return self.missing + sum(self.counts.values())

    def by_version(self) -> dict[SchemaVersion, int]:
        """Counts per parsed version (``"1.0"`` and ``"1.0.0"`` together); invalid values left out."""
        merged: dict[SchemaVersion, int] = {}
        for raw, count in self.counts.items():
            try:
                parsed = SchemaVersion.parse(raw)
            except InvalidVersion:
                continue
            merged[parsed] = merged.get(parsed, 0) + count
        return dict(sorted(merged.items()))

    @property
    def invalid(self) -> dict[str, int]:
        """Stored values that are not valid versions."""
        bad: dict[str, int] = {}
        for raw, count in self.counts.items():
            try:
                SchemaVersion.parse(raw)
            except InvalidVersion:
                bad[raw] = count
        return bad

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "total": self.total,
            "missing": self.missing,
            "counts": dict(self.counts),
            "by_version": {str(v): n for v, n in self.by_version().items()},
            "invalid": self.invalid,
            "from_source": list(self.from_source),
        }


def _field_mapping(properties: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = None
    props = properties
    for part in path.split("."):
        node = props.get(part)
        if not isinstance(node, dict):
            return None
        props = node.get("properties") or {}
    return node


def _aggregation_source(mapping: dict[str, Any], path: str) -> dict[str, Any]:
    """A composite ``terms`` source: the field itself, its keyword sub-field, or ``_source``."""
    definition = _field_mapping(mapping.get("properties") or {}, path)
    if definition is not None:
        kind = definition.get("type")
        if kind == "keyword" and definition.get("doc_values", True) is not False:
            return {"field": path}
        for sub, sub_def in (definition.get("fields") or {}).items():
            if sub_def.get("type") == "keyword" and sub_def.get("doc_values", True) is not False:
                return {"field": f"{path}.{sub}"}
    # Not indexed as a keyword (unmapped under dynamic:false, text only, ...): read _source. Slow,
    # but exact; such indices are reported in ``from_source``.
    return {
        "script": {
            "lang": "painless",
            "source": (
                "def v = params._source; "
                "for (String p : params.path) { if (!(v instanceof Map)) { return null; } v = v.get(p); } "
                "return v == null || v instanceof Map || v instanceof List ? null : v.toString();"
            ),
            "params": {"path": path.split(".")},
        }
    }


def detect_schema_versions(
    cluster: Cluster, index: str, *, field: str = VERSION_FIELD
) -> VersionCounts:
    """Count the documents of ``index`` per ``schema_version`` (exact, however many versions).

    Uses a composite ``terms`` aggregation with a bucket for documents without the field, per
    concrete index (so an alias over indices with different mappings works). Where the field is
    not indexed as a keyword, the values are read from ``_source`` by a script.
    """
    mappings = cluster.request("GET", f"/{index}/_mapping")
    counts: dict[str, int] = {}
    missing = 0
    from_source: list[str] = []
    for concrete in sorted(mappings):
        mapping = mappings[concrete].get("mappings") or {}
        source = _aggregation_source(mapping, field)
        if "script" in source:
            from_source.append(concrete)
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {
                "size": _PAGE,
                "sources": [{"v": {"terms": {**source, "missing_bucket": True}}}],
            }
            if after is not None:
                composite["after"] = after
            result = cluster.search(
                concrete,
                {
                    "size": 0,
                    "track_total_hits": False,
                    "aggs": {"versions": {"composite": composite}},
                },
            )
            agg = result["aggregations"]["versions"]
            for bucket in agg["buckets"]:
                key = bucket["key"]["v"]
                if key is None:
                    missing += bucket["doc_count"]
                else:
                    counts[str(key)] = counts.get(str(key), 0) + bucket["doc_count"]
            after = agg.get("after_key")
            if not agg["buckets"] or after is None:
                break
    return VersionCounts(index, dict(sorted(counts.items())), missing, tuple(from_source))
