"""JSON-document helpers with exactly the semantics the generated Painless has.

Paths are dotted (``author.name``); a segment walks into an object. A path is *present* when
every segment exists (its value may be null). Lists are values, not containers of paths.
Numbers follow JSON: booleans are never numbers, and an integer equals a float only when the
float is that integer exactly.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any, Final

#: A document: a ``_source`` dict.
Doc = dict[str, Any]

#: A document transformation: ``doc -> doc``, or None to leave the document out where that is
#: allowed (``op.reindex``; a migration dead-letters it). A :class:`~esmigrate.transform.RuleSet`
#: is one; so is any plain function of that shape.
Transform = Callable[[Doc], Doc | None]

#: Returned by :func:`get_path` for an absent path (distinct from a stored null).
MISSING: Final = type(
    "Missing", (), {"__repr__": lambda self: "MISSING", "__bool__": lambda self: False}
)()

LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


class RuleFailure(Exception):
    """A rule cannot apply to this document (wrong type, bad value). The message says why."""


def split_path(path: str) -> tuple[str, ...]:
    """``"a.b"`` → ``("a", "b")``; empty segments are refused."""
    if not isinstance(path, str) or not path:
        raise ValueError(f"a field path must be a non-empty string, not {path!r}")
    parts = tuple(path.split("."))
    if any(part == "" for part in parts):
        raise ValueError(f"invalid field path {path!r}: empty segment")
    return parts


def has_path(doc: dict[str, Any], parts: tuple[str, ...]) -> bool:
    node: Any = doc
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def get_path(doc: dict[str, Any], parts: tuple[str, ...]) -> Any:
    """The value at ``parts``, or :data:`MISSING`."""
    node: Any = doc
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def get_value(doc: dict[str, Any], parts: tuple[str, ...]) -> Any:
    """The value at ``parts``; None when absent or null (the Painless ``jget``)."""
    value = get_path(doc, parts)
    return None if value is MISSING else value


def set_path(doc: dict[str, Any], parts: tuple[str, ...], value: Any) -> None:
    """Set a value, creating objects for absent (or null) intermediate segments."""
    node = doc
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        elif not isinstance(child, dict):
            raise RuleFailure(f"cannot set [{'.'.join(parts)}]: [{part}] is not an object")
        node = child
    node[parts[-1]] = value


def remove_path(doc: dict[str, Any], parts: tuple[str, ...]) -> bool:
    node: Any = doc
    for part in parts[:-1]:
        if not isinstance(node, dict):
            return False
        node = node.get(part)
    if not isinstance(node, dict) or parts[-1] not in node:
        return False
    del node[parts[-1]]
    return True


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_float(value: Any) -> bool:
    return isinstance(value, float)


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: ``True != 1``, ``1 == 1.0``, ``[1] == [1.0]``, key order ignored."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if (is_int(a) or is_float(a)) and (is_int(b) or is_float(b)):
        return bool(a == b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and all(k in b and json_equal(v, b[k]) for k, v in a.items())
    return False


def json_identical(a: Any, b: Any) -> bool:
    """Like :func:`json_equal` but an integer never equals a float (what a test of two
    implementations must use: ``1`` and ``1.0`` are different documents)."""
    if is_int(a) != is_int(b) or is_float(a) != is_float(b):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_identical(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and all(k in b and json_identical(v, b[k]) for k, v in a.items())
    return json_equal(a, b)


def is_empty(value: Any) -> bool:
    """Absent, null, ``""``, ``[]`` or ``{}``."""
    return value is MISSING or value is None or (isinstance(value, (str, list, dict)) and not value)


def check_json(value: Any, what: str) -> None:
    """Refuse values a document cannot hold (or that Painless would hold differently)."""
    if value is None or isinstance(value, (bool, str)):
        return
    if is_int(value):
        if not LONG_MIN <= value <= LONG_MAX:
            raise ValueError(f"{what}: integer {value} is outside the 64-bit range")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what}: {value} is not a finite number")
        return
    if isinstance(value, list):
        for item in value:
            check_json(item, what)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{what}: object keys must be strings, not {key!r}")
            check_json(item, what)
        return
    raise ValueError(f"{what}: {type(value).__name__} is not a JSON value")


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if is_int(value) or is_float(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# -- text, ASCII-exact (the same result in Python and in Java) ------------------------------------

#: Whitespace for text rules: the six ASCII whitespace characters (Python's and Java's Unicode
#: whitespace sets differ, e.g. on U+00A0 and U+001C).
WHITESPACE = " \t\n\r\f\v"
_TO_SPACE = str.maketrans({c: " " for c in WHITESPACE[1:]})
_ASCII_LOWER = str.maketrans({chr(c): chr(c + 32) for c in range(ord("A"), ord("Z") + 1)})
WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def words(text: str) -> list[str]:
    """Maximal runs of non-whitespace characters."""
    return [part for part in text.translate(_TO_SPACE).split(" ") if part]


def collapse_whitespace(text: str) -> str:
    return " ".join(words(text))


def strip_tags(text: str) -> str:
    """Remove ``<...>`` tags: a ``<``, at least one character that is not ``>``, then ``>``."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        lt = text.find("<", i)
        if lt < 0:
            break
        gt = text.find(">", lt + 1)
        if gt < 0:
            break
        if gt == lt + 1:
            out.append(text[i : lt + 1])
            i = lt + 1
            continue
        out.append(text[i:lt])
        i = gt + 1
    out.append(text[i:])
    return "".join(out)


def ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def hashtags(text: str) -> list[str]:
    """``#word`` tags in order of first appearance; a word is ASCII letters, digits and ``_``."""
    found: list[str] = []
    i, n = 0, len(text)
    while i < n:
        at = text.find("#", i)
        if at < 0:
            break
        j = at + 1
        while j < n and text[j] in WORD_CHARS:
            j += 1
        if j > at + 1:
            tag = text[at + 1 : j]
            if tag not in found:
                found.append(tag)
            i = j
        else:
            i = at + 1
    return found


def json_value(value: Any, rule: str) -> Any:
    """A private copy of ``value`` a rule was given, refused unless it is plain JSON."""
    check_json(value, rule)
    return copy.deepcopy(value)
