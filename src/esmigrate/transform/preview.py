"""Preview a transformation on real documents: per-document field diffs and a summary.

Reads a random (seeded, so repeatable) or query-selected sample, runs the transform in Python
and writes nothing.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from esmigrate.cluster import Cluster
from esmigrate.exceptions import TransformError
from esmigrate.transform._paths import Transform, json_identical
from esmigrate.transform.rules import RuleSet


@dataclass(frozen=True)
class FieldChange:
    """One field of one document: ``added``, ``removed`` or ``changed`` (dotted path)."""

    path: str
    kind: Literal["added", "removed", "changed"]
    old: Any = None
    new: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "old": self.old, "new": self.new}


def field_diff(
    old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = ""
) -> list[FieldChange]:
    """Leaf-level differences between two documents; arrays are compared as whole values."""
    changes: list[FieldChange] = []
    for key in [*old, *(k for k in new if k not in old)]:
        path = f"{prefix}{key}"
        if key not in new:
            changes += _leaves(old[key], path, "removed")
        elif key not in old:
            changes += _leaves(new[key], path, "added")
        elif isinstance(old[key], dict) and isinstance(new[key], dict) and old[key] and new[key]:
            changes += field_diff(old[key], new[key], f"{path}.")
        elif not json_identical(old[key], new[key]):
            changes.append(FieldChange(path, "changed", old[key], new[key]))
    return changes


def _leaves(value: Any, path: str, kind: Literal["added", "removed"]) -> list[FieldChange]:
    if isinstance(value, dict) and value:
        out: list[FieldChange] = []
        for key, item in value.items():
            out += _leaves(item, f"{path}.{key}", kind)
        return out
    if kind == "added":
        return [FieldChange(path, kind, None, value)]
    return [FieldChange(path, kind, value, None)]


@dataclass(frozen=True)
class DocumentPreview:
    doc_id: str
    changes: tuple[FieldChange, ...]
    #: Top-level rules that changed this document (rule sets only).
    rules: tuple[str, ...] = ()
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.doc_id,
            "changes": [c.to_dict() for c in self.changes],
            "rules": list(self.rules),
            "error": self.error,
        }


@dataclass(frozen=True)
class PreviewReport:
    """What a transform would do to a sample of an index. Nothing was written."""

    index: str
    seed: int | None
    query: dict[str, Any] | None
    documents: tuple[DocumentPreview, ...]
    #: Rule names in order (rule sets only), for the summary.
    rule_names: tuple[str, ...] = ()
    #: Whether the rule set compiles to Painless (server-side copy); None for other transforms.
    painless: bool | None = None
    total_matching: int = 0
    field_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(1 for d in self.documents if d.changes and d.error is None)

    @property
    def failed(self) -> int:
        return sum(1 for d in self.documents if d.error is not None)

    def rule_counts(self) -> dict[str, int]:
        """Per rule: how many sampled documents it changed."""
        counts = dict.fromkeys(self.rule_names, 0)
        for doc in self.documents:
            for name in doc.rules:
                counts[name] = counts.get(name, 0) + 1
        return counts

    def failure_counts(self) -> dict[str, int]:
        """Per rule: how many sampled documents it failed on."""
        counts: dict[str, int] = {}
        for doc in self.documents:
            if doc.error is not None:
                rule = str(doc.error.get("rule"))
                counts[rule] = counts.get(rule, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "seed": self.seed,
            "query": self.query,
            "sampled": len(self.documents),
            "matching": self.total_matching,
            "changed": self.changed,
            "unchanged": len(self.documents) - self.changed - self.failed,
            "failed": self.failed,
            "painless": self.painless,
            "rules": self.rule_counts(),
            "failures": self.failure_counts(),
            "fields": self.field_counts,
            "documents": [d.to_dict() for d in self.documents],
        }


def sample_documents(
    cluster: Cluster,
    index: str,
    *,
    size: int = 10,
    query: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Up to ``size`` hits of ``query`` (all documents by default), in a random order fixed by
    ``seed`` (None: the query's own order). Returns the hits and the number matching."""
    inner = dict(query) if query else {"match_all": {}}
    if seed is not None:
        body_query: dict[str, Any] = {
            "function_score": {
                "query": inner,
                "random_score": {"seed": seed, "field": "_seq_no"},
                "boost_mode": "replace",
            }
        }
    else:
        body_query = inner
    result = cluster.search(index, {"size": size, "query": body_query, "track_total_hits": True})
    hits: list[dict[str, Any]] = result["hits"]["hits"]
    total = result["hits"]["total"]
    return hits, int(total["value"] if isinstance(total, dict) else total)


def preview(
    cluster: Cluster,
    index: str,
    transform: RuleSet | Transform,
    *,
    sample: int = 10,
    query: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> PreviewReport:
    """Run ``transform`` on a sample of ``index`` and report the field-level changes.

    Without ``query`` the sample is random; ``seed`` makes it repeatable (a new seed is drawn
    and reported when none is given). With ``query`` the first matching documents are used,
    shuffled by ``seed`` when one is given.
    """
    if sample < 1:
        raise ValueError("sample must be at least 1")
    if seed is None and query is None:
        seed = random.SystemRandom().randrange(1, 2**31)
    hits, total = sample_documents(cluster, index, size=sample, query=query, seed=seed)
    docs: list[DocumentPreview] = []
    fields: dict[str, dict[str, int]] = {}
    for hit in hits:
        source: dict[str, Any] = hit.get("_source") or {}
        doc_id = str(hit["_id"])
        rules: list[str] = []
        try:
            if isinstance(transform, RuleSet):
                result, rules = transform.trace(source)
            else:
                returned = transform(source)
                if returned is None:
                    raise TypeError("the transform returned None for a document it must keep")
                result = returned
        except TransformError as exc:
            docs.append(DocumentPreview(doc_id, (), (), {**exc.to_dict(), "doc_id": doc_id}))
            continue
        except Exception as exc:
            docs.append(
                DocumentPreview(
                    doc_id,
                    (),
                    (),
                    {
                        "rule": None,
                        "doc_id": doc_id,
                        "error": str(exc),
                        "error_type": type(exc).__name__,
                    },
                )
            )
            continue
        changes = tuple(field_diff(source, result))
        for change in changes:
            counts = fields.setdefault(change.path, {"added": 0, "removed": 0, "changed": 0})
            counts[change.kind] += 1
        docs.append(DocumentPreview(doc_id, changes, tuple(rules)))
    rules_set = transform if isinstance(transform, RuleSet) else None
    return PreviewReport(
        index=index,
        seed=seed,
        query=dict(query) if query else None,
        documents=tuple(docs),
        rule_names=tuple(r.name for r in rules_set.rules) if rules_set else (),
        painless=(rules_set.painless() is not None) if rules_set else None,
        total_matching=total,
        field_counts=dict(sorted(fields.items())),
    )
