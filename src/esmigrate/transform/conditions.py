"""Conditions on a document, for :class:`~esmigrate.transform.rules.When`: each a Python test
and, where it has one, the same test as a Painless boolean expression."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from esmigrate.transform import painless as pl
from esmigrate.transform._paths import (
    MISSING,
    Doc,
    get_path,
    get_value,
    is_empty,
    json_equal,
    json_value,
    split_path,
)


class Condition(abc.ABC):
    """A test on a document, for :class:`When`."""

    @abc.abstractmethod
    def test(self, doc: Doc) -> bool: ...

    def painless(self, c: pl.Compiler) -> str | None:
        """A Painless boolean expression over ``src``; None when not expressible."""
        return None

    @abc.abstractmethod
    def describe(self) -> str: ...

    def __invert__(self) -> Condition:
        return Not(self)

    def __and__(self, other: Condition) -> Condition:
        return All(self, other)

    def __or__(self, other: Condition) -> Condition:
        return AnyOf(self, other)


class Exists(Condition):
    """The field is present and not null."""

    def __init__(self, path: str) -> None:
        self.path = split_path(path)

    def test(self, doc: Doc) -> bool:
        return get_value(doc, self.path) is not None

    def painless(self, c: pl.Compiler) -> str | None:
        return f"(jget(src, {c.path(self.path)}) != null)"

    def describe(self) -> str:
        return f"{'.'.join(self.path)} exists"


class Missing(Condition):
    """The field is absent or null."""

    def __init__(self, path: str) -> None:
        self.path = split_path(path)

    def test(self, doc: Doc) -> bool:
        return get_value(doc, self.path) is None

    def painless(self, c: pl.Compiler) -> str | None:
        return f"(jget(src, {c.path(self.path)}) == null)"

    def describe(self) -> str:
        return f"{'.'.join(self.path)} is missing"


class IsEmpty(Condition):
    """The field is absent, null, ``""``, ``[]`` or ``{}``."""

    def __init__(self, path: str) -> None:
        self.path = split_path(path)

    def test(self, doc: Doc) -> bool:
        return is_empty(get_path(doc, self.path))

    def painless(self, c: pl.Compiler) -> str | None:
        return f"jempty(src, {c.path(self.path)})"

    def describe(self) -> str:
        return f"{'.'.join(self.path)} is empty"


class Equals(Condition):
    """The field is present and equal to ``value`` (JSON equality: ``1 == 1.0``, ``1 != true``)."""

    def __init__(self, path: str, value: Any) -> None:
        self.path = split_path(path)
        self.value = json_value(value, f"Equals({path!r})")

    def test(self, doc: Doc) -> bool:
        found = get_path(doc, self.path)
        return found is not MISSING and json_equal(found, self.value)

    def painless(self, c: pl.Compiler) -> str | None:
        p = c.path(self.path)
        return f"(jhas(src, {p}) && jeq(jget(src, {p}), {c.param(self.value)}))"

    def describe(self) -> str:
        return f"{'.'.join(self.path)} == {self.value!r}"


class In(Condition):
    """The field is present and equal to one of ``values``."""

    def __init__(self, path: str, values: Sequence[Any]) -> None:
        self.path = split_path(path)
        self.values = [json_value(v, f"In({path!r})") for v in values]

    def test(self, doc: Doc) -> bool:
        found = get_path(doc, self.path)
        return found is not MISSING and any(json_equal(found, v) for v in self.values)

    def painless(self, c: pl.Compiler) -> str | None:
        p = c.path(self.path)
        return f"(jhas(src, {p}) && jin(jget(src, {p}), {c.param(self.values)}))"

    def describe(self) -> str:
        return f"{'.'.join(self.path)} in {self.values!r}"


class Not(Condition):
    def __init__(self, condition: Condition) -> None:
        self.condition = condition

    def test(self, doc: Doc) -> bool:
        return not self.condition.test(doc)

    def painless(self, c: pl.Compiler) -> str | None:
        inner = self.condition.painless(c)
        return None if inner is None else f"(!{inner})"

    def describe(self) -> str:
        return f"not ({self.condition.describe()})"


class _Combined(Condition):
    """Several conditions joined by one operator (Python ``fn``, Painless ``op``, ``word``)."""

    fn: Callable[[Iterable[bool]], bool]
    op: str
    word: str
    empty: str

    def __init__(self, *conditions: Condition) -> None:
        self.conditions = conditions

    def test(self, doc: Doc) -> bool:
        return type(self).fn(cond.test(doc) for cond in self.conditions)

    def painless(self, c: pl.Compiler) -> str | None:
        parts = [cond.painless(c) for cond in self.conditions]
        if any(p is None for p in parts):
            return None
        return "(" + (f" {self.op} ".join(p for p in parts if p) or self.empty) + ")"

    def describe(self) -> str:
        return f" {self.word} ".join(f"({cond.describe()})" for cond in self.conditions)


class All(_Combined):
    """Every condition holds."""

    fn, op, word, empty = staticmethod(all), "&&", "and", "true"


class AnyOf(_Combined):
    """At least one condition holds."""

    fn, op, word, empty = staticmethod(any), "||", "or", "false"


class Predicate(Condition):
    """Any Python test ``doc -> bool`` (Python only)."""

    def __init__(self, func: Callable[[Doc], bool]) -> None:
        self.func = func

    def test(self, doc: Doc) -> bool:
        return bool(self.func(doc))

    def describe(self) -> str:
        return f"{getattr(self.func, '__name__', 'predicate')}(doc)"
