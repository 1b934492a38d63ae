"""The data-integrity check of the test kit: counts, ids, and a deep compare of documents.

Counts, the mapping and a random sample come from the migrator's own validation gate
(:class:`~esmigrate.migrate._validate.Validation`), so a test checks what a cut-over checks. On
top of it, every id of the expected index is looked up in the actual one (and, when the counts
differ, the other way round), page by page: memory holds one page whatever the index size. With
``deep="all"`` each page is deep-compared too, field by field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from esmigrate.cluster import Cluster
from esmigrate.exceptions import ValidationFailed
from esmigrate.migrate import DeadLetters
from esmigrate.migrate._validate import Validation, mget, refs_of
from esmigrate.schema.mapping import live_mapping
from esmigrate.transform import Transform
from esmigrate.transform._paths import json_identical
from esmigrate.transform.preview import field_diff

#: How many ids and documents a report keeps of each kind (the counts are exact).
KEEP = 20
#: Characters of a value shown in a message.
VALUE_CHARS = 80


@dataclass(frozen=True)
class DocumentDifference:
    """One document whose ``actual`` content differs from the ``expected`` one."""

    doc_id: str
    #: Dotted field paths and what happened to each (``added``, ``removed``, ``changed``).
    fields: tuple[tuple[str, str, Any, Any], ...]

    def describe(self) -> str:
        parts = []
        for path, kind, old, new in self.fields[:5]:
            if kind == "changed":
                parts.append(f"{path}: {_short(old)} → {_short(new)}")
            elif kind == "added":
                parts.append(f"{path}: unexpected {_short(new)}")
            else:
                parts.append(f"{path}: missing (expected {_short(old)})")
        more = f", and {len(self.fields) - 5} more field(s)" if len(self.fields) > 5 else ""
        return f"{self.doc_id}: {'; '.join(parts)}{more}"


@dataclass(frozen=True)
class IntegrityReport:
    """What :func:`check_integrity` found; ``ok`` when nothing differs.

    Id lists and documents are the first :data:`KEEP` of each kind; the ``*_count`` fields are
    exact.
    """

    expected: str
    actual: str
    expected_count: int
    actual_count: int
    #: Documents compared field by field (the gate's sample, or every one with ``deep="all"``).
    compared: int
    missing: tuple[str, ...] = ()
    missing_count: int = 0
    extra: tuple[str, ...] = ()
    extra_count: int = 0
    documents: tuple[DocumentDifference, ...] = ()
    documents_count: int = 0
    #: Mapping paths of the expected index that the actual one lacks.
    mapping: tuple[str, ...] = ()
    #: The validation gate's own findings (``{"check": ...}``), as it reports them.
    gate: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return not (
            self.missing_count
            or self.extra_count
            or self.documents_count
            or self.mapping
            or self.expected_count != self.actual_count
        )

    def message(self) -> str:
        """A bounded, readable account of the differences (empty when ``ok``)."""
        if self.ok:
            return ""
        lines = [f"{self.actual} differs from {self.expected}:"]
        if self.expected_count != self.actual_count:
            lines.append(f"  count: {self.actual_count}, expected {self.expected_count}")
        if self.missing_count:
            lines.append(
                f"  {self.missing_count} document(s) missing: {_ids(self.missing, self.missing_count)}"
            )
        if self.extra_count:
            lines.append(
                f"  {self.extra_count} unexpected document(s): {_ids(self.extra, self.extra_count)}"
            )
        if self.documents_count:
            lines.append(f"  {self.documents_count} document(s) differ, first:")
            lines += [f"    {d.describe()}" for d in self.documents[:5]]
        if self.mapping:
            lines.append(f"  mapping lacks: {', '.join(self.mapping[:10])}")
        return "\n".join(lines)


def check_integrity(
    cluster: Cluster,
    expected: str,
    actual: str,
    *,
    transform: Transform | None = None,
    sample_size: int = 200,
    deep: Literal["sample", "all"] = "sample",
    mapping: bool = True,
    page_size: int = 500,
) -> IntegrityReport:
    """Compare the index (or alias) ``actual`` with ``expected``: counts, every id, the mapping
    (with ``mapping`` and no ``transform``: every field of ``expected`` is in ``actual``), and
    documents deep
    compared (``transform`` applied to the expected ones first): a random sample of
    ``sample_size`` (the migrator's validation gate), or every one with ``deep="all"``. A
    document ``transform`` maps to None is expected to be absent from ``actual``.

    Reads only; memory holds one page of ``page_size`` documents.
    """
    cluster.refresh(expected)
    cluster.refresh(actual)
    gate = Validation(
        cluster,
        source=expected,
        target=actual,
        mappings=live_mapping(cluster, expected) if mapping and transform is None else {},
        # No migration ran: nothing was dead-lettered (the index does not exist).
        dead=DeadLetters(cluster, f"{expected}-no-dead-letters", "integrity"),
        transform=transform,
        sample_size=0 if deep == "all" else sample_size,
    )
    findings: list[dict[str, Any]] = []
    try:
        gate.check()
    except ValidationFailed as failed:
        findings = list(failed.differences)
    found = _Found()
    for page in cluster.scan(expected, page_size=page_size):
        _compare_page(cluster, actual, page, transform, deep == "all", found)
    # Documents the transform drops are not expected in ``actual``.
    expected_count = cluster.count(expected) - found.dropped
    actual_count = cluster.count(actual)
    if expected_count - found.missing_count + found.extra_count != actual_count:
        # Some ids of ``actual`` are not in ``expected``: find them, the same way round.
        for page in cluster.scan(actual, page_size=page_size):
            for ref, doc in zip(page, mget(cluster, expected, refs_of(page)), strict=True):
                if not doc.get("found"):
                    found.add_extra(ref["_id"])
    for finding in findings:
        if finding.get("check") == "sample":
            found.add_difference(str(finding["id"]), finding.get("expected"), finding.get("actual"))
    unmapped = next((f["paths"] for f in findings if f.get("check") == "mapping"), ())
    return IntegrityReport(
        expected=expected,
        actual=actual,
        expected_count=expected_count,
        actual_count=actual_count,
        compared=found.compared if deep == "all" else min(sample_size, expected_count),
        missing=tuple(found.missing),
        missing_count=found.missing_count,
        extra=tuple(found.extra),
        extra_count=found.extra_count,
        documents=tuple(found.documents),
        documents_count=found.documents_count,
        mapping=tuple(unmapped),
        gate=tuple(findings),
    )


def assert_integrity(
    cluster: Cluster,
    expected: str,
    actual: str,
    *,
    transform: Transform | None = None,
    sample_size: int = 200,
    deep: Literal["sample", "all"] = "sample",
    mapping: bool = True,
) -> IntegrityReport:
    """:func:`check_integrity`, raising :class:`AssertionError` with its message when anything
    differs; returns the report otherwise."""
    report = check_integrity(
        cluster,
        expected,
        actual,
        transform=transform,
        sample_size=sample_size,
        deep=deep,
        mapping=mapping,
    )
    if not report.ok:
        raise AssertionError(report.message())
    return report


class _Found:
    """Running tallies: exact counts, the first :data:`KEEP` of each."""

    def __init__(self) -> None:
        self.compared = 0
        self.dropped = 0
        self.missing: list[str] = []
        self.missing_count = 0
        self.extra: list[str] = []
        self.extra_count = 0
        self.documents: list[DocumentDifference] = []
        self.documents_count = 0

    def add_missing(self, doc_id: str) -> None:
        self.missing_count += 1
        if len(self.missing) < KEEP:
            self.missing.append(doc_id)

    def add_extra(self, doc_id: str) -> None:
        self.extra_count += 1
        if len(self.extra) < KEEP:
            self.extra.append(doc_id)

    def add_difference(self, doc_id: str, want: Any, have: Any) -> None:
        if have is None:
            return  # missing: counted by id
        if isinstance(want, Mapping) and isinstance(have, Mapping):
            changes = [(c.path, c.kind, c.old, c.new) for c in field_diff(want, have)]
        else:  # the transform dropped the document, or a non-object
            changes = [("(document)", "changed", want, have)]
        self.documents_count += 1
        if len(self.documents) < KEEP:
            self.documents.append(DocumentDifference(doc_id, tuple(changes)))


def _compare_page(
    cluster: Cluster,
    actual: str,
    page: list[dict[str, Any]],
    transform: Transform | None,
    deep: bool,
    found: _Found,
) -> None:
    for hit, doc in zip(page, mget(cluster, actual, refs_of(page), source=deep), strict=True):
        want = hit["_source"]
        if transform is not None:
            want = transform(json.loads(json.dumps(want)))
            if want is None:  # dropped by the transform: ``actual`` must not have it
                found.dropped += 1
                if doc.get("found"):
                    found.add_extra(hit["_id"])
                continue
        if not doc.get("found"):
            found.add_missing(hit["_id"])
            continue
        if not deep:
            continue
        have = doc.get("_source")
        found.compared += 1
        if not json_identical(want, have):
            found.add_difference(hit["_id"], want, have)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _ids(ids: tuple[str, ...], count: int) -> str:
    shown = ", ".join(ids[:10])
    return shown + (f", ... ({count - 10} more)" if count > 10 else "")
