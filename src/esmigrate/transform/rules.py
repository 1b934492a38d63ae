"""Declarative transformation rules and the :class:`RuleSet` that runs them.

A rule set is a pure ``doc -> doc`` function over ``_source`` dicts. When every rule in it can be
expressed in Painless, :meth:`RuleSet.painless` returns one script that does exactly the same on
the server (inside ``_reindex`` or ``_update_by_query``); otherwise it returns None and the
copy mode python runs the rules in Python. A rule that fails on a document raises
:class:`~esmigrate.exceptions.TransformError` naming the rule, never skips it silently.

::

    rules = RuleSet(
        Rename("created", "created_at"),
        Default("category", "general"),
        Cast("views", "integer"),
        When(Missing("published_at"), Copy("created_at", "published_at")),
        NormalizeText("title"),
    )
    new_source = rules(old_source)
    script = rules.painless()      # {"lang": "painless", "source": ..., "params": ...} or None
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from esmigrate.exceptions import TransformError
from esmigrate.transform import painless as pl
from esmigrate.transform._cast import CAST_LIST, CAST_PAINLESS, CastTarget, cast_value
from esmigrate.transform._paths import (
    MISSING,
    Doc,
    RuleFailure,
    get_path,
    get_value,
    has_path,
    json_value,
    remove_path,
    set_path,
    split_path,
)
from esmigrate.transform.conditions import Condition, Predicate


class Rule(abc.ABC):
    """One transformation step. Subclasses implement :meth:`apply` and, when they can do the
    same in Painless, :meth:`painless`."""

    def __init__(self, name: str | None = None) -> None:
        self._name = name

    @property
    def name(self) -> str:
        """How errors, previews and dead-letter records call this rule."""
        if self._name is not None:
            return self._name
        # Descriptions may quote values: keep names on one line, without '"', and short.
        text = self.describe().replace('"', "'").replace("\r", "\\r").replace("\n", "\\n")
        return text if len(text) <= 80 else text[:77] + "..."

    @abc.abstractmethod
    def describe(self) -> str:
        """A short description, e.g. ``rename title → headline``."""

    @abc.abstractmethod
    def apply(self, doc: Doc) -> None:
        """Change ``doc`` (a private working copy) in place."""

    def painless(self, c: pl.Compiler) -> str | None:
        """Painless statements doing exactly what :meth:`apply` does on ``src``; None if none."""
        return None

    def children(self) -> Sequence[Rule]:
        return ()

    def painless_functions(self) -> str:
        """Painless functions this rule's statements call, beyond the shared prelude."""
        return ""

    # -- running, with the failure attributed to this rule ---------------------------------------

    def run(self, doc: Doc) -> None:
        try:
            self.apply(doc)
        except TransformError:
            raise
        except Exception as exc:
            raise _failure(self.name, exc) from exc

    def compile(self, c: pl.Compiler) -> str | None:
        body = self.painless(c)
        if not body:
            return body  # None: no Painless form; "": nothing to do (Painless refuses empty blocks)
        return c.wrap(self.name, body)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _failure(rule: str, exc: BaseException) -> TransformError:
    detail = str(exc) if isinstance(exc, RuleFailure) else f"{type(exc).__name__}: {exc}"
    return TransformError(f'Rule "{rule}" failed: {detail}', rule=rule, cause=exc)


# -- field rules -----------------------------------------------------------------------------------


class Rename(Rule):
    """Move the value at ``source`` to ``target`` (dotted paths; objects are created as needed).

    An absent ``source`` leaves the document alone; a present one (even null) replaces
    ``target``.
    """

    def __init__(self, source: str, target: str, *, name: str | None = None) -> None:
        super().__init__(name)
        self.source, self.target = split_path(source), split_path(target)

    def describe(self) -> str:
        return f"rename {'.'.join(self.source)} → {'.'.join(self.target)}"

    def apply(self, doc: Doc) -> None:
        if self.source == self.target or not has_path(doc, self.source):
            return
        value = get_path(doc, self.source)
        remove_path(doc, self.source)
        set_path(doc, self.target, value)

    def painless(self, c: pl.Compiler) -> str | None:
        if self.source == self.target:
            return ""
        s, t, v = c.path(self.source), c.path(self.target), c.var()
        return f"if (jhas(src, {s})) {{ def {v} = jget(src, {s}); jdel(src, {s}); jset(src, {t}, {v}); }}"


#: ``Move`` is ``Rename``: dotted paths move values between objects.
Move = Rename


class Copy(Rule):
    """Copy the value at ``source`` (deeply) to ``target``; nothing when ``source`` is absent."""

    def __init__(self, source: str, target: str, *, name: str | None = None) -> None:
        super().__init__(name)
        self.source, self.target = split_path(source), split_path(target)

    def describe(self) -> str:
        return f"copy {'.'.join(self.source)} → {'.'.join(self.target)}"

    def apply(self, doc: Doc) -> None:
        if has_path(doc, self.source):
            set_path(doc, self.target, copy.deepcopy(get_path(doc, self.source)))

    def painless(self, c: pl.Compiler) -> str | None:
        s, t = c.path(self.source), c.path(self.target)
        return f"if (jhas(src, {s})) {{ jset(src, {t}, jcopy(jget(src, {s}))); }}"


class Remove(Rule):
    """Remove fields (absent ones are fine)."""

    def __init__(self, *paths: str, name: str | None = None) -> None:
        super().__init__(name)
        if not paths:
            raise ValueError("Remove needs at least one field path")
        self.paths = tuple(split_path(p) for p in paths)

    def describe(self) -> str:
        return "remove " + ", ".join(".".join(p) for p in self.paths)

    def apply(self, doc: Doc) -> None:
        for path in self.paths:
            remove_path(doc, path)

    def painless(self, c: pl.Compiler) -> str | None:
        return "\n".join(f"jdel(src, {c.path(p)});" for p in self.paths)


class Set(Rule):
    """Set ``path`` to a constant JSON value, whatever it held."""

    def __init__(self, path: str, value: Any, *, name: str | None = None) -> None:
        super().__init__(name)
        self.path = split_path(path)
        self.value = json_value(value, f"Set({path!r})")

    def describe(self) -> str:
        return f"set {'.'.join(self.path)} = {self.value!r}"

    def apply(self, doc: Doc) -> None:
        set_path(doc, self.path, copy.deepcopy(self.value))

    def painless(self, c: pl.Compiler) -> str | None:
        return f"jset(src, {c.path(self.path)}, jcopy({c.param(self.value)}));"


class Default(Rule):
    """Set ``path`` to ``value`` when it is absent or null."""

    def __init__(self, path: str, value: Any, *, name: str | None = None) -> None:
        super().__init__(name)
        self.path = split_path(path)
        self.value = json_value(value, f"Default({path!r})")

    def describe(self) -> str:
        return f"default {'.'.join(self.path)} = {self.value!r}"

    def apply(self, doc: Doc) -> None:
        if get_value(doc, self.path) is None:
            set_path(doc, self.path, copy.deepcopy(self.value))

    def painless(self, c: pl.Compiler) -> str | None:
        p = c.path(self.path)
        return f"if (jget(src, {p}) == null) {{ jset(src, {p}, jcopy({c.param(self.value)})); }}"


class Cast(Rule):
    """Convert the value at ``path`` to ``string``, ``integer``, ``float`` or ``boolean``.

    Exact, and the same in Python and Painless: integers print in decimal, booleans as
    ``true``/``false``; strings become numbers only when they are plain decimal numbers
    (``"+12"``, ``"-3.5e2"``; no spaces, no ``_``, no ``inf``); a float becomes an integer only
    when it has no fraction; ``"true"``/``"false"`` become booleans. Anything else fails the
    document (a float to string too: Python and Java print doubles differently). Arrays are cast
    element by element; absent and null values are left alone.
    """

    def __init__(self, path: str, to: CastTarget, *, name: str | None = None) -> None:
        super().__init__(name)
        if to not in CAST_PAINLESS:
            raise ValueError(f"Cast to {to!r}: use one of string, integer, float, boolean")
        self.path = split_path(path)
        self.to: CastTarget = to

    def describe(self) -> str:
        return f"cast {'.'.join(self.path)} to {self.to}"

    def apply(self, doc: Doc) -> None:
        value = get_path(doc, self.path)
        if value is MISSING or value is None:
            return
        if isinstance(value, dict):
            raise RuleFailure(f"cannot cast object [{'.'.join(self.path)}] to {self.to}")
        set_path(doc, self.path, cast_value(value, self.to))

    def painless_functions(self) -> str:
        return CAST_PAINLESS[self.to] + CAST_LIST.format(to=self.to)

    def painless(self, c: pl.Compiler) -> str | None:
        p, v = c.path(self.path), c.var()
        dotted = c.param(".".join(self.path))
        return (
            f"def {v} = jget(src, {p});\n"
            f"if ({v} != null) {{\n"
            f'  if ({v} instanceof Map) {{ throw new IllegalArgumentException("cannot cast object [" + {dotted} + "] to {self.to}"); }}\n'
            f"  jset(src, {p}, jcast_all_{self.to}({v}));\n"
            "}"
        )


class Compute(Rule):
    """Set ``path`` to ``func(doc)``, a value computed from the whole document.

    ``func`` must not modify the document it is given. With ``painless=`` (an expression over
    ``src``, the ``_source`` map) the rule compiles; you vouch that it computes the same.
    """

    def __init__(
        self,
        path: str,
        func: Callable[[Doc], Any],
        *,
        painless: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.path = split_path(path)
        self.func = func
        self.expression = painless

    def describe(self) -> str:
        return f"compute {'.'.join(self.path)} = {getattr(self.func, '__name__', 'func')}(doc)"

    def apply(self, doc: Doc) -> None:
        set_path(doc, self.path, self.func(doc))

    def painless(self, c: pl.Compiler) -> str | None:
        if self.expression is None:
            return None
        return f"jset(src, {c.path(self.path)}, {self.expression});"


class Convert(Rule):
    """Replace the value at ``path`` with ``func(value)`` (absent and null values are left alone).

    With ``painless=`` (an expression over ``value``) the rule compiles.
    """

    def __init__(
        self,
        path: str,
        func: Callable[[Any], Any],
        *,
        painless: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.path = split_path(path)
        self.func = func
        self.expression = painless

    def describe(self) -> str:
        return f"convert {'.'.join(self.path)} with {getattr(self.func, '__name__', 'func')}"

    def apply(self, doc: Doc) -> None:
        value = get_value(doc, self.path)
        if value is not None:
            set_path(doc, self.path, self.func(value))

    def painless(self, c: pl.Compiler) -> str | None:
        if self.expression is None:
            return None
        p = c.path(self.path)
        return f"def value = jget(src, {p});\nif (value != null) {{ jset(src, {p}, {self.expression}); }}"


class Apply(Rule):
    """Any Python function ``doc -> doc`` (or ``doc -> None`` after changing it in place).

    Never compiles to Painless: a rule set containing one runs in Python.
    """

    def __init__(self, func: Callable[[Doc], Doc | None], *, name: str | None = None) -> None:
        super().__init__(name)
        self.func = func

    def describe(self) -> str:
        return f"apply {getattr(self.func, '__qualname__', repr(self.func))}"

    def apply(self, doc: Doc) -> None:
        out = self.func(doc)
        if out is not None and out is not doc:
            if not isinstance(out, dict):
                raise RuleFailure(f"the function returned {type(out).__name__}, not a dict")
            doc.clear()
            doc.update(out)


class When(Rule):
    """Run ``rules`` when ``condition`` holds, else ``otherwise``."""

    def __init__(
        self,
        condition: Condition | Callable[[Doc], bool],
        *rules: Rule,
        otherwise: Sequence[Rule] = (),
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.condition = condition if isinstance(condition, Condition) else Predicate(condition)
        self.rules = tuple(rules)
        self.otherwise = tuple(otherwise)

    def describe(self) -> str:
        return f"when {self.condition.describe()}"

    def children(self) -> Sequence[Rule]:
        return (*self.rules, *self.otherwise)

    def apply(self, doc: Doc) -> None:  # pragma: no cover - run() is overridden
        self.run(doc)

    def run(self, doc: Doc) -> None:
        try:
            holds = self.condition.test(doc)
        except Exception as exc:
            raise _failure(self.name, exc) from exc
        for rule in self.rules if holds else self.otherwise:
            rule.run(doc)

    def compile(self, c: pl.Compiler) -> str | None:
        test = self.condition.painless(c)
        if test is None:
            return None
        branches = []
        for group in (self.rules, self.otherwise):
            parts = [rule.compile(c) for rule in group]
            if any(p is None for p in parts):
                return None
            branches.append("\n".join(p for p in parts if p))
        flag = c.var("cond")
        return (
            f"boolean {flag} = false;\n"
            + c.wrap(self.name, f"{flag} = {test};")
            + _if(flag, branches[0], branches[1])
        )


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


def _if(flag: str, then: str, otherwise: str) -> str:
    # Painless refuses empty blocks ("extraneous else block"), so only non-empty ones are written.
    if then and otherwise:
        return f"\nif ({flag}) {{\n{_indent(then)}\n}} else {{\n{_indent(otherwise)}\n}}"
    if then:
        return f"\nif ({flag}) {{\n{_indent(then)}\n}}"
    if otherwise:
        return f"\nif (!{flag}) {{\n{_indent(otherwise)}\n}}"
    return ""


# -- the rule set ----------------------------------------------------------------------------------


class RuleSet:
    """An ordered set of rules: a pure ``doc -> doc`` function, and its Painless twin.

    Plain callables among ``rules`` become :class:`Apply` rules. Rule names must be unique (two
    rules with the same description get ``#2``, ``#3``... appended) and free of ``"``.
    """

    def __init__(self, *rules: Rule | Callable[[Doc], Doc | None], name: str | None = None) -> None:
        self.name = name
        self.rules: tuple[Rule, ...] = tuple(r if isinstance(r, Rule) else Apply(r) for r in rules)
        seen: dict[str, int] = {}
        for rule in self.walk():
            base = rule.name
            if '"' in base or "\n" in base:
                raise ValueError(f"rule name {base!r}: names may not contain '\"' or newlines")
            seen[base] = seen.get(base, 0) + 1
            if seen[base] > 1:
                if rule._name is not None:
                    raise ValueError(f"two rules are named {base!r}; rule names must be unique")
                rule._name = f"{base} #{seen[base]}"

    def walk(self) -> Iterator[Rule]:
        """Every rule, nested ones included, in order."""
        stack = list(reversed(self.rules))
        while stack:
            rule = stack.pop()
            yield rule
            stack.extend(reversed(rule.children()))

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet({', '.join(r.name for r in self.rules)})"

    def describe(self) -> list[str]:
        return [rule.name for rule in self.walk()]

    def __call__(self, doc_source: Doc, doc_id: str | None = None) -> Doc:
        """The transformed copy of ``doc_source`` (never modified).

        Raises :class:`~esmigrate.exceptions.TransformError` with the failing rule's name,
        ``doc_id`` (when given) and the cause.
        """
        doc = copy.deepcopy(doc_source)
        try:
            for rule in self.rules:
                rule.run(doc)
        except TransformError as exc:
            if doc_id is None:
                raise
            raise TransformError(
                f"{exc.message.rstrip('.')} (document {doc_id})",
                rule=exc.rule,
                doc_id=doc_id,
                cause=exc.cause,
                hint=exc.hint,
            ) from exc.cause
        return doc

    apply = __call__

    def trace(self, doc_source: Doc) -> tuple[Doc, list[str]]:
        """Like calling the set, but also returns the names of the top-level rules that changed
        the document (for previews)."""
        doc = copy.deepcopy(doc_source)
        touched: list[str] = []
        for rule in self.rules:
            before = copy.deepcopy(doc)
            rule.run(doc)
            if doc != before or _types_changed(doc, before):
                touched.append(rule.name)
        return doc, touched

    def painless(self) -> dict[str, Any] | None:
        """``{"lang": "painless", "source": ..., "params": ...}`` doing exactly what the set does
        on ``ctx._source``, or None when a rule has no exact Painless form."""
        return self._compile(pl.script)

    def painless_ingest(self) -> dict[str, Any] | None:
        """The same transformation as the script of an ingest pipeline's ``script`` processor
        (whose ``ctx`` is the document's fields beside its metadata), or None when a rule has no
        exact Painless form."""
        return self._compile(pl.ingest_script)

    def _compile(
        self,
        assemble: Callable[[str, dict[str, Any], list[str]], dict[str, Any] | None],
    ) -> dict[str, Any] | None:
        c = pl.Compiler()
        parts = [rule.compile(c) for rule in self.rules]
        if any(p is None for p in parts):
            return None
        functions: list[str] = []
        for rule in self.walk():
            extra = rule.painless_functions()
            if extra and extra not in functions:
                functions.append(extra)
        return assemble("\n".join(p for p in parts if p), c.params, functions)

    def rule_named(self, name: str) -> Rule | None:
        return next((r for r in self.walk() if r.name == name), None)


def _types_changed(a: Any, b: Any) -> bool:
    """``1`` → ``1.0`` or ``True`` → ``1`` compare equal in Python but are changes."""
    if type(a) is not type(b):
        return True
    if isinstance(a, dict):
        return any(_types_changed(v, b[k]) for k, v in a.items() if k in b)
    if isinstance(a, list):
        return any(_types_changed(x, y) for x, y in zip(a, b, strict=False))
    return False
