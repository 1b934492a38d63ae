"""The engine's own view of a mapping: what it stores, and every field with all its defaults.

:func:`~esmigrate.schema.mapping.normalize_mapping` absorbs the defaults and spellings esmigrate
knows of; the engine knows them all, for its own version. When a mapping diff finds differences
and a cluster is at hand, both sides are put in the engine's terms and compared again:

- a live index: ``GET /idx/_mapping`` and ``GET /idx/_mapping/field/*?include_defaults=true``;
- a mapping from code: the same two reads of a throwaway index created with it — hidden, one
  shard, no replicas, no documents, deleted at once — which the engine parses exactly as it will
  parse the real change (defaults filled in, ``"256"`` read as 256, ``"0,0"`` as a point, dotted
  names expanded). The throwaway gets the settings that shape a mapping (analysis, similarity,
  ``index.mapping.*``) from the live index it is compared with. Views are cached per engine
  version, mapping and settings.

Creating the throwaway needs the right to create indices. When the engine refuses it (no
permission, a read-only cluster, or a mapping it cannot parse on its own), there is no engine
view and the comparison keeps the normal form: the answer offline.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from esmigrate.cluster import Cluster
from esmigrate.exceptions import AuthenticationError, NotFoundError, RequestError
from esmigrate.schema.mapping import flat_settings

#: Name prefix of the throwaway indices (dot-prefixed and hidden: no application template or
#: wildcard search meets them).
THROWAWAY_PREFIX = ".esmigrate-canonical-"

# Index settings that change how a mapping is parsed: custom analyzers and normalizers, custom
# similarities, the index-wide ``index.mapping.coerce``/``ignore_malformed`` defaults and limits.
_SHAPING_SETTINGS = ("index.analysis.", "index.similarity.", "index.mapping.", "index.knn")


@dataclass(frozen=True)
class EngineView:
    """A mapping as one engine stores it.

    ``mapping`` is the ``GET _mapping`` form (defaults left out); ``fields`` maps the dotted
    path of every leaf field and multi-field (``title.raw``) to its full definition with every
    default filled in.
    """

    mapping: dict[str, Any]
    fields: dict[str, dict[str, Any]] = field(repr=False)


_CACHE_SIZE = 256
_cache: dict[tuple[str, str], EngineView | None] = {}


def shaping_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings among ``settings`` (nested or flat) that shape a mapping, flat
    (``index.analysis.analyzer.folded.type``)."""
    flat = flat_settings(settings)
    return {key: flat[key] for key in sorted(flat) if key.startswith(_SHAPING_SETTINGS)}


def live_settings(cluster: Cluster, index: str) -> dict[str, Any]:
    """The shaping settings of a live index (the first one, for an alias)."""
    answer = cluster.request("GET", f"/{index}/_settings", params={"flat_settings": "true"})
    if not answer:
        return {}
    first = answer[sorted(answer)[0]].get("settings") or {}
    return shaping_settings(first)


def live_view(cluster: Cluster, index: str, mapping: Mapping[str, Any]) -> EngineView:
    """The view of a live index whose ``GET _mapping`` is ``mapping`` (for an alias, the fields
    of its first index: :func:`~esmigrate.schema.mapping.live_mapping` checked that they agree)."""
    return EngineView(dict(mapping), _field_definitions(cluster, index))


def canonical_view(
    cluster: Cluster, mapping: Mapping[str, Any], settings: Mapping[str, Any] | None = None
) -> EngineView | None:
    """The view the engine gives ``mapping`` (a throwaway index, see the module docstring).

    None when the engine refuses the throwaway index (permission, read-only cluster, a mapping
    that needs more than ``settings``): compare offline then.
    """
    shaping = shaping_settings(settings or {})
    digest = hashlib.sha256(
        orjson.dumps({"m": mapping, "s": shaping}, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    key = (str(cluster.engine), digest)
    if key in _cache:
        return _cache[key]
    view = _throwaway_view(cluster, mapping, shaping)
    if len(_cache) >= _CACHE_SIZE:
        del _cache[next(iter(_cache))]
    _cache[key] = view
    return view


def _throwaway_view(
    cluster: Cluster, mapping: Mapping[str, Any], settings: Mapping[str, Any]
) -> EngineView | None:
    # A random name: two processes canonicalising the same mapping must not meet.
    name = f"{THROWAWAY_PREFIX}{uuid.uuid4().hex[:16]}"
    body = {
        "settings": {
            **settings,
            "index.hidden": True,
            "index.number_of_shards": 1,
            "index.number_of_replicas": 0,
            "index.auto_expand_replicas": "false",
        },
        "mappings": dict(mapping),
    }
    try:
        cluster.request("PUT", f"/{name}", body=body)
    except (RequestError, AuthenticationError):
        return None
    try:
        answer = cluster.request("GET", f"/{name}/_mapping")
        return EngineView(answer[name].get("mappings") or {}, _field_definitions(cluster, name))
    except (RequestError, AuthenticationError):
        return None
    finally:
        with contextlib.suppress(NotFoundError):
            cluster.request("DELETE", f"/{name}")


def _field_definitions(cluster: Cluster, index: str) -> dict[str, dict[str, Any]]:
    answer = cluster.request(
        "GET", f"/{index}/_mapping/field/*", params={"include_defaults": "true"}
    )
    if not answer:
        return {}
    entries = answer[sorted(answer)[0]].get("mappings") or {}
    out: dict[str, dict[str, Any]] = {}
    for path, entry in entries.items():
        definition = entry.get("mapping") or {}
        if path.startswith("_") or len(definition) != 1:
            continue  # metadata fields (their defaults are not reported)
        full = next(iter(definition.values()))
        if isinstance(full, dict):
            out[path] = {k: v for k, v in full.items() if k not in ("fields", "properties")}
    return out
