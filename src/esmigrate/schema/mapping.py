"""One adapter from anything that describes a mapping to the mapping dict, and its normal form.

Accepted everywhere a mapping is expected: a ``Document`` class or instance (``elasticsearch.dsl``
or ``opensearchpy``), an ``Index`` or ``Mapping`` object of either DSL, a plain dict (a mapping,
an index body with ``"mappings"``, or a ``GET /idx/_mapping`` answer), or the name of a live index
or alias together with a :class:`~esmigrate.cluster.Cluster`.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any

from esmigrate.cluster import Cluster, Engine
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
    answer = cluster.request("GET", f"/{index}/_mapping")
    if not answer:
        raise SchemaError(f"No index matches {index!r}.")
    names = sorted(answer)
    first: dict[str, Any] = answer[names[0]].get("mappings") or {}
    differing = [
        name
        for name in names[1:]
        if normalize_mapping(answer[name].get("mappings") or {}, cluster.engine)
        != normalize_mapping(first, cluster.engine)
    ]
    if differing:
        raise SchemaError(
            f"{index!r} covers indices with different mappings: {names[0]} differs from "
            + ", ".join(differing)
            + ".",
            hint="Name one concrete index.",
        )
    return first


def settings_of(obj: Any) -> dict[str, Any]:
    """The index settings ``obj`` declares, flat (``index.analysis.analyzer.x.type``): those of
    a Document's or an ``Index``'s index, or an index body's ``"settings"``; ``{}`` otherwise."""
    settings: Any = None
    owner: Any = getattr(obj, "_index", None) if hasattr(obj, "_doc_type") else obj
    if hasattr(owner, "_doc_types") and callable(getattr(owner, "to_dict", None)):
        settings = owner.to_dict().get("settings")
    elif isinstance(obj, Mapping) and isinstance(obj.get("settings"), Mapping):
        settings = obj["settings"]
    return flat_settings(settings or {})


def flat_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"index": {"analysis": ...}}`` as ``{"index.analysis....": value}``; keys without the
    ``index.`` prefix get it, as the engine reads them."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_settings(value, f"{name}."))
            continue
        out[name if name.startswith("index.") else f"index.{name}"] = value
    return out


def index_name_of(obj: Any) -> str | None:
    """The index name a Document class (``class Index: name = ...``) or Index object declares."""
    index = getattr(obj, "_index", None)
    name = getattr(index, "_name", None) if index is not None else getattr(obj, "_name", None)
    if isinstance(name, str) and name and name != "*":
        return name
    return None


# -- normal form ----------------------------------------------------------------------------------
#
# Two mappings the engine treats as identical must have one normal form, without asking the
# engine: ``esmigrate check`` and the validation gate compare a mapping written in code with
# the one the engine echoes (which leaves out defaults, parses strings and expands dotted
# names). The defaults below are what ``GET _mapping/field/*?include_defaults=true`` reports
# for a field of that type; ``tests/test_mapping_corpus.py`` checks them against each engine.
# When a cluster is at hand, :mod:`esmigrate.schema.canonical` settles whatever this table
# leaves different by asking the engine itself.

OBJECT_TYPES = frozenset({"object", "nested"})

_COMMON_DEFAULTS: dict[str, Any] = {
    "index": True,
    "store": False,
    "doc_values": True,
    "boost": 1.0,
    "ignore_malformed": False,
    "coerce": True,
    "eager_global_ordinals": False,
    "null_value": None,
    "similarity": None,
    "skip_list": False,
    "meta": {},
    "copy_to": [],
    "fields": {},
}
_TEXT_DEFAULTS: dict[str, Any] = {
    "analyzer": "default",
    "norms": True,
    "fielddata": False,
    "fielddata_frequency_filter": {"min": 0.0, "max": 2147483647.0, "min_segment_size": 0},
    "index_phrases": False,
    "index_prefixes": None,
    "index_options": "positions",
    "term_vector": "no",
    "position_increment_gap": -1,
}
_DATE_DEFAULTS: dict[str, Any] = {
    "format": "strict_date_optional_time||epoch_millis",
    "print_format": "strict_date_optional_time",
    "locale": "",
}
_TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "text": _TEXT_DEFAULTS,
    "match_only_text": _TEXT_DEFAULTS,
    "keyword": {
        "ignore_above": 2147483647,
        "norms": False,
        "index_options": "docs",
        "split_queries_on_whitespace": False,
        "normalizer": "default",
        "use_similarity": False,
    },
    "wildcard": {"ignore_above": 2147483647, "normalizer": "default"},
    "date": _DATE_DEFAULTS,
    "date_nanos": _DATE_DEFAULTS,
    "date_range": {"format": _DATE_DEFAULTS["format"], "locale": ""},
    "geo_point": {"ignore_z_value": True},
    "binary": {"doc_values": False},
    "search_as_you_type": {
        "doc_values": False,
        "max_shingle_size": 3,
        "analyzer": "default",
        "index_options": "positions",
        "norms": True,
        "term_vector": "no",
    },
    "completion": {
        "analyzer": "simple",
        "preserve_separators": True,
        "preserve_position_increments": True,
        "max_input_length": 50,
    },
    "token_count": {"enable_position_increments": True},
    "rank_feature": {"positive_score_impact": True},
    "rank_features": {"positive_score_impact": True},
    "join": {"eager_global_ordinals": True},
    "object": {"enabled": True},
    "nested": {"enabled": True, "include_in_parent": False, "include_in_root": False},
}

# Defaults that differ between engine versions (OpenSearch 3 gives a wildcard field doc values).
_ENGINE_DEFAULTS: dict[tuple[str, int], dict[str, dict[str, Any]]] = {
    ("opensearch", 2): {"wildcard": {"doc_values": False}},
    ("opensearch", 3): {"wildcard": {"doc_values": True}},
}

#: Parameters whose default is another parameter's value (``search_analyzer`` follows
#: ``analyzer``, ``search_quote_analyzer`` follows ``search_analyzer``).
_FOLLOWS = {"search_analyzer": "analyzer", "search_quote_analyzer": "search_analyzer"}

_BOOLEAN_PARAMS = frozenset(
    {
        "index", "store", "doc_values", "norms", "coerce", "ignore_malformed", "enabled",
        "eager_global_ordinals", "fielddata", "index_phrases", "include_in_parent",
        "include_in_root", "split_queries_on_whitespace", "ignore_z_value",
        "date_detection", "numeric_detection", "positive_score_impact", "preserve_separators",
        "preserve_position_increments", "enable_position_increments", "required", "skip_list",
        "use_similarity",
    }
)  # fmt: skip
_INTEGER_PARAMS = frozenset(
    {"ignore_above", "position_increment_gap", "max_shingle_size", "max_input_length"}
)
_FLOAT_PARAMS = frozenset({"boost", "scaling_factor"})
_NUMERIC_TYPES = frozenset(
    {
        "long", "integer", "short", "byte", "double", "float", "half_float", "unsigned_long",
        "scaled_float", "token_count",
    }
)  # fmt: skip

#: Root options and their defaults: an explicit default equals leaving the option out.
ROOT_DEFAULTS: dict[str, Any] = {
    "dynamic": "true",
    "date_detection": True,
    "numeric_detection": False,
    "dynamic_date_formats": ["strict_date_optional_time", "yyyy/MM/dd HH:mm:ss Z||yyyy/MM/dd Z"],
    "dynamic_templates": [],
    "_meta": {},
}
# Metadata fields whose parameters have defaults the engine leaves out of GET _mapping.
_METADATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "_source": {"enabled": True, "includes": [], "excludes": []},
    "_routing": {"required": False},
}


def _table(engine: Engine | None) -> Mapping[str, Mapping[str, Any]]:
    """The type defaults for ``engine``; without one, those that differ are unknown (None)."""
    return _table_for(None if engine is None else (engine.name, engine.major))


@functools.cache
def _table_for(engine: tuple[str, int] | None) -> Mapping[str, Mapping[str, Any]]:
    specific: Mapping[str, Mapping[str, Any]]
    if engine is None:
        specific = {
            kind: dict.fromkeys(params)
            for table in _ENGINE_DEFAULTS.values()
            for kind, params in table.items()
        }
    else:
        specific = _ENGINE_DEFAULTS.get(engine, {})
    return {
        **_TYPE_DEFAULTS,
        **{kind: {**_TYPE_DEFAULTS.get(kind, {}), **d} for kind, d in specific.items()},
    }


def default_of(
    field_type: str,
    parameter: str,
    definition: Mapping[str, Any] | None = None,
    engine: Engine | None = None,
) -> Any:
    """The engine's default for ``parameter`` on a field of ``field_type`` (None: unknown or none).

    ``definition`` (normalised) gives the defaults that follow another parameter
    (``search_analyzer`` is the ``analyzer`` unless set).
    """
    leader = _FOLLOWS.get(parameter)
    if leader is not None and definition is not None:
        value = definition.get(leader)
        return value if value is not None else default_of(field_type, leader, definition, engine)
    specific = _table(engine).get(field_type, {})
    if parameter in specific:
        return specific[parameter]
    return _COMMON_DEFAULTS.get(parameter)


def is_default(
    field_type: str,
    parameter: str,
    value: Any,
    definition: Mapping[str, Any],
    engine: Engine | None = None,
) -> bool:
    """True when ``value`` is what the engine uses for ``parameter`` when it is left out."""
    if value is None:
        return True
    known = (
        parameter in _FOLLOWS
        or parameter in _COMMON_DEFAULTS
        or parameter in _table(engine).get(field_type, {})
    )
    if not known:
        return False
    default = default_of(field_type, parameter, definition, engine)
    return same_value(value, default)


def same_value(a: Any, b: Any) -> bool:
    """Equal as mapping values: ``True`` is not ``1``, but ``100`` is ``100.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def field_type(definition: Mapping[str, Any]) -> str:
    """A field definition's type; ``object`` when it has none."""
    return str(definition.get("type") or "object")


def _bool(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    if kind is int and number.is_integer():
        return int(number)
    return number if kind is float else value


def _dynamic(value: Any) -> str:
    return str(value).lower() if not isinstance(value, bool) else ("true" if value else "false")


def _geo_point(value: Any) -> Any:
    """``"lat,lon"``, ``[lon, lat]`` and ``{"lat", "lon"}`` as the engine echoes them."""
    lat: Any = None
    lon: Any = None
    if isinstance(value, str) and value.count(",") == 1:
        lat, lon = (part.strip() for part in value.split(","))
    elif isinstance(value, list) and len(value) == 2:
        lon, lat = value
    elif isinstance(value, Mapping) and set(value) == {"lat", "lon"}:
        lat, lon = value["lat"], value["lon"]
    try:
        return {"lat": float(lat), "lon": float(lon)}
    except (TypeError, ValueError):
        return value  # a geohash or WKT: only the engine knows (the canonical view settles it)


def _null_value(kind: str, value: Any) -> Any:
    if kind == "geo_point":
        return _geo_point(value)
    if kind == "boolean":
        return _bool(value)
    if kind in _NUMERIC_TYPES:
        return _number(value, int if kind in ("long", "integer", "short", "byte") else float)
    return value


def normalize_value(kind: str, key: str, value: Any) -> Any:
    """A parameter's value as the engine parses it (``"true"``, ``"256"``, ``"0,0"``)."""
    if key in _BOOLEAN_PARAMS:
        return _bool(value)
    if key in _INTEGER_PARAMS:
        return _number(value, int)
    if key in _FLOAT_PARAMS:
        return _number(value, float)
    if key == "null_value":
        return _null_value(kind, value)
    return value


def _properties(value: Any, engine: Engine | None) -> dict[str, Any]:
    """``properties`` with dotted names expanded into objects, as the engine stores them."""
    out: dict[str, Any] = {}
    for name, definition in (value or {}).items():
        if not isinstance(definition, Mapping):
            out[name] = definition
            continue
        head, _, rest = name.partition(".")
        if not rest or not head:
            out[name] = _merge_object(out.get(name), normalize_field(definition, engine))
            continue
        inner = normalize_field({"properties": {rest: definition}}, engine)
        out[head] = _merge_object(out.get(head), inner)
    return dict(sorted(out.items()))


def _merge_object(existing: Any, new: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(existing, dict) or field_type(existing) not in OBJECT_TYPES:
        return new
    merged = {**existing, **{k: v for k, v in new.items() if k != "properties"}}
    props = {**(existing.get("properties") or {})}
    for name, definition in (new.get("properties") or {}).items():
        props[name] = _merge_object(props.get(name), definition)
    if props:
        merged["properties"] = dict(sorted(props.items()))
    return dict(sorted(merged.items()))


def normalize_field(definition: Mapping[str, Any], engine: Engine | None = None) -> dict[str, Any]:
    """One field definition in normal form (see :func:`normalize_mapping`)."""
    kind = field_type(definition)
    out: dict[str, Any] = {}
    for key, value in definition.items():
        if key == "type":
            continue
        if key == "properties":
            props = _properties(value, engine)
            if props:
                out["properties"] = props
        elif key == "fields":
            subs = {name: normalize_field(sub, engine) for name, sub in (value or {}).items()}
            if subs:
                out["fields"] = dict(sorted(subs.items()))
        elif key == "copy_to":
            targets = sorted([value] if isinstance(value, str) else list(value or []))
            if targets:
                out["copy_to"] = targets
        elif key == "dynamic":
            out["dynamic"] = _dynamic(value)
        else:
            out[key] = copy.deepcopy(normalize_value(kind, key, value))
    for key in [k for k in out if k not in ("properties", "fields", "dynamic")]:
        if is_default(kind, key, out[key], out, engine):
            del out[key]
    if kind != "object":
        out["type"] = kind
    return dict(sorted(out.items()))


def _template_mapping(definition: Any) -> Any:
    """A dynamic template's mapping with values parsed, but nothing dropped: ``{}`` and
    ``{"type": "object"}`` mean different things there, and ``{name}`` placeholders stay."""
    if not isinstance(definition, Mapping):
        return copy.deepcopy(definition)
    kind = str(definition.get("type") or "object")
    out: dict[str, Any] = {}
    for key, value in definition.items():
        if key in ("properties", "fields") and isinstance(value, Mapping):
            out[key] = {name: _template_mapping(sub) for name, sub in value.items()}
        elif key == "dynamic":
            out[key] = _dynamic(value)
        elif key == "copy_to":
            out[key] = sorted([value] if isinstance(value, str) else list(value or []))
        else:
            out[key] = copy.deepcopy(normalize_value(kind, key, value))
    return dict(sorted(out.items()))


def _dynamic_template(template: Any) -> Any:
    """A dynamic template without its no-op condition (``match_mapping_type: "*"``)."""
    if not isinstance(template, Mapping) or len(template) != 1:
        return copy.deepcopy(template)
    ((name, body),) = template.items()
    if not isinstance(body, Mapping):
        return copy.deepcopy(template)
    out = {
        key: _template_mapping(value) if key == "mapping" else copy.deepcopy(value)
        for key, value in body.items()
        if not (key == "match_mapping_type" and value == "*")
    }
    return {name: dict(sorted(out.items()))}


def _metadata_field(name: str, value: Any) -> Any:
    if not isinstance(value, Mapping):
        return copy.deepcopy(value)
    defaults = _METADATA_DEFAULTS.get(name, {})
    out = {}
    for key, item in value.items():
        item = _bool(item) if key in _BOOLEAN_PARAMS else item
        if key in defaults and same_value(item, defaults[key]):
            continue
        out[key] = copy.deepcopy(item)
    return dict(sorted(out.items()))


def normalize_mapping(mapping: Mapping[str, Any], engine: Engine | None = None) -> dict[str, Any]:
    """The normal form used for comparing mappings.

    Explicit defaults are dropped (root options, metadata fields and field parameters the
    engine leaves out), values are parsed as the engine parses them (``"true"``, ``"256"``,
    ``"0,0"`` for a geo point), ``type: object`` is implied, ``dynamic`` is a string,
    ``copy_to`` a sorted list, dotted field names become objects, and empty ``properties``,
    ``fields`` and ``match_mapping_type: "*"`` are gone.

    ``engine`` (the :class:`~esmigrate.cluster.Engine` the mapping is for) adds the defaults
    that differ between engine versions; without it, only the defaults they share are dropped.
    """
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if key == "properties":
            props = _properties(value, engine)
            if props:
                out["properties"] = props
        elif key == "dynamic":
            out["dynamic"] = _dynamic(value)
        elif key in ("date_detection", "numeric_detection"):
            out[key] = _bool(value)
        elif key == "dynamic_templates":
            out[key] = [_dynamic_template(t) for t in value or []]
        elif key.startswith("_") and key != "_meta":
            out[key] = _metadata_field(key, value)
        else:
            out[key] = copy.deepcopy(value)
    for key, default in ROOT_DEFAULTS.items():
        if key in out and same_value(out[key], default):
            del out[key]
    for key in [k for k, v in out.items() if k.startswith("_") and k != "_meta" and v == {}]:
        del out[key]
    return dict(sorted(out.items()))


def engine_field(definition: Mapping[str, Any], kind: str | None = None) -> dict[str, Any]:
    """A field definition in normal form as the engine takes it back: every object says its
    ``"type"`` (without ``properties`` the engine cannot tell an object from a typo)."""
    out = copy.deepcopy(dict(definition))
    if "properties" in out:
        out["properties"] = {name: engine_field(sub) for name, sub in out["properties"].items()}
    out["type"] = kind or field_type(definition)
    return out


def engine_mapping(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A mapping in normal form as the engine takes it back (see :func:`engine_field`)."""
    out = copy.deepcopy(dict(mapping))
    if "properties" in out:
        out["properties"] = {name: engine_field(sub) for name, sub in out["properties"].items()}
    return out
