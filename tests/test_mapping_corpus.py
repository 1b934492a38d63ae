"""The mapping diff against the engine, on real-world mappings and generated changes to them.

Each mapping of ``tests/mapping_corpus`` (see its README) is created on the engine, then:

- **no change after creation**: the diff of the live index and the mapping it was created from
  is empty (with the engine's view, and offline against ``GET _mapping``);
- **equivalent spellings are equal**: the mapping rewritten in ways the engine treats as the same
  (every default spelled out, values as strings, dotted names, ``type: object``, root defaults,
  ``match_mapping_type: "*"``...) gives an empty diff; each rewrite is first checked to be
  equivalent by the engine itself (an index created from it reports the same fields with
  ``include_defaults``);
- **single changes** (every field: type, each parameter set, changed and removed, multi-fields
  added, changed and removed, the field removed, a sibling added; the root: ``dynamic``,
  detection options, dynamic templates, ``_meta``, metadata fields) are diffed against the live
  index in rounds (one change per field per round). A change classed ``needs_reindex`` is sent
  as a person would write it and must be refused (or be a removal, which the engine ignores);
  the compatible ones are sent with the diff's own ``put_mapping_body()``, which must be
  accepted, hold on read-back, and leave exactly the breaking changes in a new diff; a change
  the diff does not report must be one the engine does not make either.

``ESMIGRATE_CORPUS_ROUNDS`` caps the rounds per mapping (default 2; ``all`` for every round:
about 9,700 changes, 5 to 10 minutes). The figures of a run are printed with ``pytest -s``.
"""

from __future__ import annotations

import copy
import json
import os
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from esmigrate.cluster import Cluster
from esmigrate.exceptions import RequestError
from esmigrate.migrate._layout import mapping_missing
from esmigrate.schema import Change, diff_mappings, normalize_mapping
from esmigrate.schema.canonical import EngineView, canonical_view, live_view
from esmigrate.schema.diff import unapplied_changes
from tests.conftest import env_without_esmigrate, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.engine_matrix]

Json = dict[str, Any]
CORPUS = Path(__file__).parent / "mapping_corpus"
MAPPINGS = sorted(p.stem for p in CORPUS.glob("*.json"))
OBJECTS = ("object", "nested")


def load(name: str) -> Json:
    body: Json = json.loads((CORPUS / f"{name}.json").read_text())
    return body


def rounds_wanted() -> int | None:
    value = os.environ.get("ESMIGRATE_CORPUS_ROUNDS", "2")
    return None if value == "all" else int(value)


# -- walking mappings -----------------------------------------------------------------------------


def fields_of(props: Json, prefix: str = "") -> Iterator[tuple[str, Json]]:
    """(dotted path, definition) of every field, objects before what they hold."""
    for name, definition in props.items():
        path = f"{prefix}{name}"
        yield path, definition
        if "properties" in definition:
            yield from fields_of(definition["properties"], f"{path}.")


def at(mapping: Json, path: str) -> Json:
    node = mapping
    for part in path.split("."):
        node = node["properties"][part]
    return node


def siblings(mapping: Json, path: str) -> Json:
    node = mapping
    for part in path.split(".")[:-1]:
        node = node["properties"][part]
    props: Json = node["properties"]
    return props


# -- single changes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Perturbation:
    label: str
    #: The field it changes ("" for the mapping root).
    path: str
    apply: Callable[[Json], None]
    #: Something left out: the engine accepts the mapping and keeps what it had.
    removal: bool = False

    def __str__(self) -> str:
        return f"{self.path or '(root)'}: {self.label}"


def _field_changes(path: str, definition: Json) -> list[Perturbation]:
    kind = definition.get("type", "object")
    name = path.split(".")[-1]
    out: list[Perturbation] = []

    def put(param: str, value: Any) -> None:
        def apply(m: Json) -> None:
            at(m, path)[param] = copy.deepcopy(value)

        out.append(Perturbation(f"{param}={value!r}", path, apply))

    def puts(*pairs: tuple[str, Any]) -> None:
        for param, value in pairs:
            put(param, value)

    def drop(param: str) -> None:
        def apply(m: Json) -> None:
            at(m, path).pop(param, None)

        out.append(Perturbation(f"without {param}", path, apply, removal=True))

    def retype(new: Json) -> None:
        def apply(m: Json) -> None:
            siblings(m, path)[name] = copy.deepcopy(new)

        out.append(Perturbation(f"type {kind} → {new.get('type', 'object')}", path, apply))

    def remove(m: Json) -> None:
        del siblings(m, path)[name]

    def add_sibling(m: Json) -> None:
        siblings(m, path)[f"{name}_added"] = {"type": "keyword"}

    out.append(Perturbation("removed", path, remove, removal=True))
    out.append(Perturbation("sibling added", f"{path}_added", add_sibling))
    for param in definition:
        if param not in ("type", "properties", "fields", "value", "scaling_factor", "path"):
            drop(param)
    if kind in OBJECTS:
        for value in ("strict", False, True):
            put("dynamic", value)
        put("enabled", False)

        def add_property(m: Json) -> None:
            at(m, path).setdefault("properties", {})["added"] = {"type": "long"}

        out.append(Perturbation("property added", f"{path}.added", add_property))
        if kind == "object":
            retype({**definition, "type": "nested"})
        else:
            put("include_in_parent", True)
        return out
    if kind in ("text", "match_only_text"):
        retype({"type": "keyword"})
        puts(
            ("analyzer", "simple"), ("search_analyzer", "simple"),
            ("search_quote_analyzer", "whitespace"), ("norms", not definition.get("norms", True)),
            ("index_options", "freqs"), ("index", False), ("store", True),
            ("term_vector", "yes"), ("position_increment_gap", 10), ("copy_to", ["copied"]))  # fmt: skip
        if kind == "text":
            puts(("fielddata", True), ("index_phrases", True), ("eager_global_ordinals", True))
    elif kind in ("keyword", "wildcard"):
        retype({"type": "text"})
        puts(
            ("ignore_above", 10), ("ignore_above", 100000), ("null_value", "NA"),
            ("normalizer", "lowercase"), ("doc_values", not definition.get("doc_values", kind == "keyword")),
            ("copy_to", ["copied"]))  # fmt: skip
        if kind == "keyword":
            puts(
                ("index", False),
                ("eager_global_ordinals", True),
                ("store", True),
                ("split_queries_on_whitespace", True),
                ("norms", True),
                ("similarity", "boolean"),
                ("index_options", "freqs"),
            )
    elif kind in ("long", "integer", "short", "byte", "double", "float", "half_float",
                  "scaled_float", "unsigned_long"):  # fmt: skip
        retype({"type": "keyword"})
        retype({"type": "integer" if kind == "long" else "long"})
        puts(
            ("coerce", False),
            ("ignore_malformed", True),
            ("null_value", 7),
            ("doc_values", False),
            ("index", False),
            ("store", True),
        )
        if kind == "scaled_float":
            put("scaling_factor", 1000)
    elif kind in ("date", "date_nanos"):
        retype({"type": "keyword"})
        retype({"type": "date_nanos" if kind == "date" else "date"})
        puts(
            ("format", "yyyy-MM-dd"),
            ("ignore_malformed", True),
            ("null_value", "2020-01-01"),
            ("locale", "de"),
            ("doc_values", False),
        )
    elif kind == "geo_point":
        retype({"type": "keyword"})
        puts(
            ("null_value", "0,0"),
            ("null_value", [1.5, 2.5]),
            ("null_value", "s3y0"),
            ("ignore_malformed", True),
            ("ignore_z_value", False),
            ("doc_values", False),
        )
    elif kind == "ip":
        retype({"type": "keyword"})
        puts(("null_value", "127.0.0.1"), ("ignore_malformed", True), ("doc_values", False))
    elif kind == "boolean":
        retype({"type": "keyword"})
        puts(("null_value", True), ("doc_values", False))
    elif kind.endswith("_range"):
        retype({"type": "keyword"})
        puts(("coerce", False), ("doc_values", False), ("index", False))
    elif kind == "constant_keyword":
        put("value", "other")
    if kind not in ("constant_keyword", "alias"):
        out.extend(_multi_field_changes(path, definition))
    return out


def _multi_field_changes(path: str, definition: Json) -> list[Perturbation]:
    def add(m: Json) -> None:
        at(m, path).setdefault("fields", {})["added"] = {"type": "keyword"}

    out = [Perturbation("multi-field added", path, add)]
    for sub in definition.get("fields") or {}:

        def remove(m: Json, sub: str = sub) -> None:
            subs = at(m, path)["fields"]
            del subs[sub]
            if not subs:
                del at(m, path)["fields"]

        def parameter(m: Json, sub: str = sub) -> None:
            spec = at(m, path)["fields"][sub]
            if spec.get("type") == "keyword":
                spec["ignore_above"] = 17
            else:
                spec["analyzer"] = "simple"

        def retype(m: Json, sub: str = sub) -> None:
            spec = at(m, path)["fields"][sub]
            at(m, path)["fields"][sub] = {
                "type": "text" if spec.get("type") == "keyword" else "keyword"
            }

        out += [
            Perturbation(f"multi-field {sub} removed", path, remove, removal=True),
            Perturbation(f"multi-field {sub} parameter", path, parameter),
            Perturbation(f"multi-field {sub} type", path, retype),
        ]
    return out


def _root_changes(mapping: Json) -> list[Perturbation]:
    out: list[Perturbation] = []

    def put(key: str, value: Any) -> None:
        def apply(m: Json) -> None:
            m[key] = copy.deepcopy(value)

        out.append(Perturbation(f"{key}={value!r}", "", apply))

    def puts(*pairs: tuple[str, Any]) -> None:
        for key, value in pairs:
            put(key, value)

    def drop(key: str) -> None:
        def apply(m: Json) -> None:
            m.pop(key, None)

        out.append(Perturbation(f"without {key}", "", apply, removal=True))

    puts(
        ("dynamic", "strict"), ("dynamic", "false"), ("dynamic", "true"), ("dynamic", False),
        ("dynamic", True), ("date_detection", False), ("date_detection", True),
        ("numeric_detection", True), ("numeric_detection", False),
        ("dynamic_date_formats", ["yyyy-MM-dd"]),
        ("dynamic_templates", [{"strings": {"match_mapping_type": "string",
                                             "mapping": {"type": "keyword"}}}]),
        ("dynamic_templates", []), ("_meta", {"owner": "search", "v": 2}), ("_meta", {}),
        ("_source", {"enabled": False}), ("_source", {"excludes": ["x*"]}),
        ("_source", {"enabled": True}), ("_routing", {"required": True}),
    )  # fmt: skip
    for key in mapping:
        if key != "properties":
            drop(key)
    if mapping.get("dynamic_templates"):

        def template_changed(m: Json) -> None:
            ((_, template),) = m["dynamic_templates"][0].items()
            template.setdefault("mapping", {})["index"] = False

        out.append(Perturbation("dynamic template changed", "", template_changed))
    return out


def perturbations(mapping: Json) -> list[Perturbation]:
    found = _root_changes(mapping)
    for path, definition in fields_of(mapping.get("properties") or {}):
        found += _field_changes(path, definition)
    return found


def _overlaps(a: str, b: str) -> bool:
    if a == "" or b == "":
        return a == b
    return a == b or a.startswith(f"{b}.") or b.startswith(f"{a}.")


def rounds(changes: list[Perturbation]) -> list[list[Perturbation]]:
    """The changes in rounds, each round touching every field at most once."""
    out: list[list[Perturbation]] = []
    left = list(changes)
    while left:
        taken: list[Perturbation] = []
        rest: list[Perturbation] = []
        for change in left:
            busy = any(_overlaps(change.path, t.path) for t in taken)
            (rest if busy else taken).append(change)
        out.append(taken)
        left = rest
    return out


def owner_of(change: Change, round_: list[Perturbation]) -> Perturbation | None:
    where = change.owner or change.path
    for p in round_:
        if p.path == "" and (where == "" or where.startswith("_")):
            return p
        if p.path and (where == p.path or where.startswith(f"{p.path}.")):
            return p
    return None


def body_for(mapping: Json, p: Perturbation) -> Json | None:
    """The put-mapping a person would write for ``p``: the field's whole new definition (with
    the objects on its way), or the root options."""
    if p.path == "":
        return {k: v for k, v in mapping.items() if k != "properties"} or None
    try:
        definition = at(mapping, p.path)
    except KeyError:
        return None
    body: Json = {"properties": {}}
    target = body["properties"]
    node = mapping
    parts = p.path.split(".")
    for part in parts[:-1]:
        node = node["properties"][part]
        holder = target.setdefault(part, {"type": node.get("type", "object")})
        target = holder.setdefault("properties", {})
    target[parts[-1]] = copy.deepcopy(definition)
    return body


# -- equivalent spellings -------------------------------------------------------------------------

_BOOLEANS = {"index", "store", "doc_values", "norms", "coerce", "ignore_malformed", "enabled",
             "eager_global_ordinals", "fielddata", "index_phrases", "include_in_parent",
             "include_in_root", "split_queries_on_whitespace", "ignore_z_value"}  # fmt: skip
_NUMBERS = {"ignore_above", "scaling_factor", "position_increment_gap", "max_shingle_size"}

Rewrite = Callable[[Json], int]

# Parameters the engine reports with include_defaults but does not take in a mapping.
_REPORTED_ONLY = {("match_only_text", "index_options"), ("match_only_text", "norms")}


def _definitions(m: Json) -> Iterator[tuple[str, Json]]:
    for path, definition in fields_of(m.get("properties") or {}):
        yield path, definition
        for sub, spec in (definition.get("fields") or {}).items():
            yield f"{path}.{sub}", spec


def spellings(view: EngineView) -> list[tuple[str, Rewrite]]:
    """(name, rewrite): a rewrite edits a mapping in place and says how many spots it changed."""

    def explicit(param: str) -> Rewrite:
        def rewrite(m: Json) -> int:
            count = 0
            for path, definition in _definitions(m):
                full = view.fields.get(path) or {}
                if (definition.get("type"), param) in _REPORTED_ONLY:
                    continue
                if full.get(param) is not None and param not in definition:
                    definition[param] = copy.deepcopy(full[param])
                    count += 1
            return count

        return rewrite

    def as_strings(m: Json) -> int:
        count = 0
        for _, definition in _definitions(m):
            for key, value in list(definition.items()):
                if key in _BOOLEANS and isinstance(value, bool):
                    definition[key] = str(value).lower()
                elif key in _NUMBERS and isinstance(value, (int, float)):
                    definition[key] = str(value)
                else:
                    continue
                count += 1
        return count

    def copy_to(m: Json) -> int:
        count = 0
        for _, definition in _definitions(m):
            targets = definition.get("copy_to")
            if isinstance(targets, list) and len(targets) == 1:
                definition["copy_to"] = targets[0]
                count += 1
        return count

    def object_type(m: Json) -> int:
        count = 0
        for _, definition in fields_of(m.get("properties") or {}):
            if "properties" in definition and definition.get("type", "object") == "object":
                if "type" in definition:
                    del definition["type"]
                else:
                    definition["type"] = "object"
                definition.setdefault("enabled", True)
                count += 1
            elif definition.get("type") == "nested":
                definition.update(include_in_parent=False, include_in_root=False)
                count += 1
        return count

    def dotted(m: Json) -> int:
        count = 0

        def walk(props: Json) -> None:
            nonlocal count
            for name in list(props):
                definition = props[name]
                inner = definition.get("properties")
                if (
                    isinstance(inner, dict)
                    and len(inner) == 1
                    and set(definition) == {"properties"}
                ):
                    ((child, spec),) = inner.items()
                    del props[name]
                    props[f"{name}.{child}"] = spec
                    count += 1
                elif isinstance(inner, dict):
                    walk(inner)

        walk(m.get("properties") or {})
        return count

    def root(m: Json) -> int:
        count = 0
        for key, value in (("dynamic", True), ("date_detection", True),
                           ("numeric_detection", False), ("dynamic_templates", []),
                           ("_source", {"enabled": True}), ("_routing", {"required": False}),
                           ("_meta", {})):  # fmt: skip
            if key not in m:
                m[key] = copy.deepcopy(value)
                count += 1
        if m.get("dynamic") in ("true", "false"):
            m["dynamic"] = m["dynamic"] == "true"
            count += 1
        return count

    def templates(m: Json) -> int:
        count = 0
        for template in m.get("dynamic_templates") or []:
            for spec in template.values():
                if "match_mapping_type" not in spec:
                    spec["match_mapping_type"] = "*"
                    count += 1
                for key, value in list((spec.get("mapping") or {}).items()):
                    if key in _NUMBERS and isinstance(value, int):
                        spec["mapping"][key] = str(value)
                        count += 1
        return count

    params = sorted({p for full in view.fields.values() for p in full} - {"type"})
    found: list[tuple[str, Rewrite]] = [(f"explicit {p}", explicit(p)) for p in params]
    found += [("values as strings", as_strings), ("copy_to as a string", copy_to),
              ("object spelling", object_type), ("dotted names", dotted),
              ("root defaults", root), ("dynamic template spelling", templates)]  # fmt: skip
    return found


# -- the run --------------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one mapping's run found; every list must be empty."""

    mapping: str
    changes: int = 0
    refused: int = 0
    applied: int = 0
    ignored_removals: int = 0
    unchanged: int = 0
    invalid: int = 0
    spellings: int = 0
    rounds: int = 0
    spurious: list[str] = field(default_factory=list)
    spurious_offline: list[str] = field(default_factory=list)
    spelling_changes: list[str] = field(default_factory=list)
    own_400s: list[str] = field(default_factory=list)
    silent_noops: list[str] = field(default_factory=list)
    accepted_reindex: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def problems(self) -> dict[str, list[str]]:
        names = ("spurious", "spurious_offline", "spelling_changes", "own_400s", "silent_noops",
                 "accepted_reindex", "missed")  # fmt: skip
        return {n: getattr(self, n) for n in names if getattr(self, n)}

    def line(self) -> str:
        return (
            f"{self.mapping}: {self.changes} changes in {self.rounds} rounds ({self.refused} "
            f"refused, {self.applied} applied, {self.ignored_removals} removals, "
            f"{self.unchanged} no-ops, {self.invalid} invalid), {self.spellings} equivalent "
            "spellings; " + ", ".join(f"{k}={len(v)}" for k, v in self.problems().items())
        )


def _live(cluster: Cluster, index: str) -> Json:
    mapping: Json = cluster.request("GET", f"/{index}/_mapping")[index]["mappings"]
    return mapping


def _same(a: EngineView, b: EngineView) -> bool:
    """The engine's own verdict: the same fields with the same defaults, and the same options
    on the root and on objects."""

    def shape(mapping: Json) -> Json:
        def strip(props: Json) -> Json:
            return {
                name: {k: (strip(v) if k == "properties" else v) for k, v in spec.items()}
                if spec.get("type", "object") in OBJECTS
                else {}
                for name, spec in props.items()
            }

        normal = normalize_mapping(mapping)
        return {**normal, "properties": strip(normal.get("properties") or {})}

    return a.fields == b.fields and shape(a.mapping) == shape(b.mapping)


def check_spellings(cluster: Cluster, index: str, settings: Json, figures: Figures) -> None:
    """Rewrite the live mapping in every way the engine takes as the same, and diff it."""
    live = live_view(cluster, index, _live(cluster, index))
    rewrites = spellings(live)

    def variant(chosen: list[tuple[str, Rewrite]]) -> tuple[Json, int]:
        mapping = copy.deepcopy(_live(cluster, index))
        return mapping, sum(rewrite(mapping) for _, rewrite in chosen)

    def same(chosen: list[tuple[str, Rewrite]]) -> bool:
        view = canonical_view(cluster, variant(chosen)[0], settings)
        return view is not None and _same(view, live)

    # All at once; if the engine does not take that as the same, only the rewrites it takes
    # one by one.
    chosen = rewrites if same(rewrites) else [r for r in rewrites if same([r])]
    mapping, figures.spellings = variant(chosen)
    found = diff_mappings(index, {"mappings": mapping, "settings": settings}, cluster=cluster)
    figures.spelling_changes += [c.describe() for c in found.changes]


def _with(state: Json, changes: list[Perturbation]) -> Json | None:
    wanted = copy.deepcopy(state)
    try:
        for p in changes:
            p.apply(wanted)
    except (KeyError, IndexError):
        return None
    return wanted


def valid_changes(
    cluster: Cluster, state: Json, settings: Json, changes: list[Perturbation], figures: Figures
) -> list[Perturbation]:
    """The changes that give a mapping the engine takes at all (enabling fielddata on a field
    that is not indexed does not): halves of the round are tried until each bad one is found."""
    wanted = _with(state, changes)
    if wanted is not None and canonical_view(cluster, wanted, settings) is not None:
        return changes
    if len(changes) == 1:
        figures.invalid += 1
        return []
    half = len(changes) // 2
    return valid_changes(cluster, state, settings, changes[:half], figures) + valid_changes(
        cluster, state, settings, changes[half:], figures
    )


def run_round(
    cluster: Cluster,
    index: str,
    state: Json,
    settings: Json,
    round_: list[Perturbation],
    figures: Figures,
) -> None:
    applied = valid_changes(cluster, state, settings, round_, figures)
    wanted = copy.deepcopy(state)
    for p in applied:
        p.apply(wanted)
    figures.changes += len(applied)
    figures.rounds += 1
    target = {"mappings": wanted, "settings": settings}
    diff = diff_mappings(index, target, cluster=cluster)
    by_change: dict[int, list[Change]] = {id(p): [] for p in applied}
    for change in diff.changes:
        owner = owner_of(change, applied)
        if owner is None:
            figures.spurious.append(f"not asked for: {change.describe()}")
        else:
            by_change[id(owner)].append(change)
    # Breaking changes, written as a person would: the engine must refuse them (a removal it
    # accepts and ignores: a mapped field stays, an option left out keeps its value).
    sent_raw: list[Perturbation] = []
    for p in applied:
        found = by_change[id(p)]
        if not found:
            figures.unchanged += 1
        elif any(c.compatibility == "needs_reindex" for c in found):
            body = body_for(wanted, p)
            if p.removal or body is None:
                figures.ignored_removals += 1
                continue
            try:
                cluster.request("PUT", f"/{index}/_mapping", body=body)
            except RequestError:
                figures.refused += 1
            else:
                sent_raw.append(p)
    body = diff.put_mapping_body()
    if body:
        try:
            cluster.request("PUT", f"/{index}/_mapping", body=body)
        except RequestError as exc:
            figures.own_400s.append(f"{exc.reason}: {json.dumps(body)[:400]}")
            return
        figures.applied += sum(
            1
            for p in applied
            if by_change[id(p)]
            and all(c.compatibility != "needs_reindex" for c in by_change[id(p)])
        )
        figures.silent_noops += [
            f"read back: {c.describe()}" for c in unapplied_changes(cluster, index, body)
        ]
    after = diff_mappings(index, target, cluster=cluster)
    expected = {c.describe() for c in diff.breaking}
    left = {c.describe() for c in after.changes}
    figures.silent_noops += [f"still differs: {line}" for line in sorted(left - expected)]
    for p in sent_raw:
        gone = [c.describe() for c in by_change[id(p)] if c.describe() not in left]
        if gone:
            figures.accepted_reindex += [f"{p}: {line}" for line in gone]
    # A change the diff did not report must be one the engine does not make either.
    quiet = [p for p in applied if not by_change[id(p)]]
    if quiet:
        probe = copy.deepcopy(_live(cluster, index))
        for p in quiet:
            p.apply(probe)
        view = canonical_view(cluster, probe, settings)
        if view is not None and not _same(view, live_view(cluster, index, _live(cluster, index))):
            figures.missed += [str(p) for p in quiet]


def run_corpus_mapping(cluster: Cluster, name: str, index: str, limit: int | None) -> Figures:
    body = load(name)
    mapping, settings = body["mappings"], body.get("settings") or {}
    figures = Figures(name)
    create = {"settings": {**settings, "number_of_replicas": 0}, "mappings": mapping}
    cluster.request("PUT", f"/{index}", body=create)
    figures.spurious += [c.describe() for c in diff_mappings(index, body, cluster=cluster)]
    # The normal form alone (what the diff checks before it asks the engine, and what the
    # blue-green validation gate compares) sees no change either.
    live = _live(cluster, index)
    if normalize_mapping(live, cluster.engine) != normalize_mapping(mapping, cluster.engine):
        figures.spurious_offline += [c.describe() for c in diff_mappings(live, mapping)]
    figures.spurious_offline += [f"validation gate: {p}" for p in mapping_missing(live, mapping)]
    check_spellings(cluster, index, settings, figures)
    all_rounds = rounds(perturbations(_live(cluster, index)))
    if limit is not None and len(all_rounds) > limit:
        step = len(all_rounds) / limit
        all_rounds = [all_rounds[int(i * step)] for i in range(limit)]
    for round_ in all_rounds:
        # Every round starts from the mapping as created (earlier rounds changed the index).
        cluster.request("DELETE", f"/{index}")
        cluster.request("PUT", f"/{index}", body=create)
        run_round(cluster, index, _live(cluster, index), settings, round_, figures)
    return figures


@pytest.mark.parametrize("name", MAPPINGS)
def test_corpus_mapping(cluster: Cluster, prefix: str, name: str) -> None:
    figures = run_corpus_mapping(
        cluster, name, f"{prefix}-{name.replace('_', '-')}", rounds_wanted()
    )
    print(figures.line())
    assert not figures.problems(), json.dumps(figures.problems(), indent=1)


def test_check_cli_on_fresh_corpus_indices(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    """``esmigrate check`` on indices freshly created from the corpus mappings exits 0."""
    lines = ["import json, pathlib", "", "", "class _Mapping:",
             "    def __init__(self, body):", "        self.body = body", "",
             "    def to_dict(self):", "        return json.loads(json.dumps(self.body))", ""]  # fmt: skip
    for name in MAPPINGS:
        body = load(name)
        index = f"{prefix}-{name.replace('_', '-')}"
        cluster.request(
            "PUT",
            f"/{index}",
            body={**body, "settings": {**body.get("settings", {}), "number_of_replicas": 0}},
        )
        (tmp_path / f"{name}.json").write_text(json.dumps(body["mappings"]))
        lines += textwrap.dedent(
            f"""

            class Doc_{name}:
                class _doc_type:
                    mapping = _Mapping(json.loads(pathlib.Path({str(tmp_path / f"{name}.json")!r}).read_text()))

                class _index:
                    _name = {index!r}
            """
        ).splitlines()
    (tmp_path / "corpusdocs.py").write_text("\n".join(lines) + "\n")
    (tmp_path / "esmigrate.toml").write_text('schema_modules = ["corpusdocs"]\n')
    result = run_cli(
        "--json", "check", "--url", cluster_url, cwd=tmp_path, env=env_without_esmigrate()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert [c["ok"] for c in report["indices"]] == [True] * len(MAPPINGS)
