"""Accept mappings and index definitions as plain dicts or as DSL objects.

``elasticsearch.dsl`` and ``opensearchpy`` share the same API, so both are read by duck typing
(neither is imported here): a ``Document`` class has ``_doc_type.mapping`` and ``_index``; an
``Index`` has ``_name`` and ``to_dict()``; a ``Mapping`` has ``to_dict()``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from esmigrate.exceptions import SchemaError
from esmigrate.schema.mapping import mapping_of as adapt


def _is_document(value: Any) -> bool:
    return hasattr(value, "_doc_type") and hasattr(value, "_index")


def plain(value: Any, what: str) -> dict[str, Any] | None:
    """A private deep copy of a dict argument (operations are data: later edits to the caller's
    dict must not change them)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return copy.deepcopy(dict(value))
    raise TypeError(f"{what} must be a dict, not {type(value).__name__}")


def mapping_of(value: Any) -> dict[str, Any] | None:
    """A mapping body (``{"properties": ...}``) from anything
    :func:`esmigrate.schema.mapping_of` accepts (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(
            f"mappings must be a dict, a Document class or a Mapping object, not {value!r}"
        )
    try:
        return adapt(value)
    except SchemaError as exc:
        raise TypeError(
            f"mappings must be a dict, a Document class or a Mapping object: {exc.message}"
        ) from None


def index_definition(value: Any) -> tuple[str | None, dict[str, Any]]:
    """(name, ``{"settings", "mappings", "aliases"}``) from an Index object or Document class.

    The name is None when the object does not declare one.
    """
    if _is_document(value):
        index = value._index
        body = dict(index.to_dict())
        if "mappings" not in body:
            body["mappings"] = value._doc_type.mapping.to_dict()
    elif hasattr(value, "_name") and callable(getattr(value, "to_dict", None)):
        index = value
        body = dict(index.to_dict())
    else:
        raise TypeError(
            f"expected an index name, an Index object or a Document class, not {type(value).__name__}"
        )
    name = getattr(index, "_name", None)
    if not isinstance(name, str) or name in ("", "*"):
        name = None
    return name, {k: v for k, v in body.items() if v}
