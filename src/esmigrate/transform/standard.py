"""Ready rules for the usual content transformations, each with an exact Painless twin.

Text handling is defined on ASCII so that Python and Java agree to the character: whitespace is
the six ASCII whitespace characters, case folding maps ``A``-``Z`` only, a hashtag word is ASCII
letters, digits and ``_``. Other characters pass through untouched. (Differences from the
guide's sketches: tags are stripped before whitespace is collapsed, so no double spaces remain;
hashtags keep their order instead of a set's; reading time rounds up and is 0 for no words.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from esmigrate.transform import painless as pl
from esmigrate.transform._paths import (
    Doc,
    RuleFailure,
    ascii_lower,
    collapse_whitespace,
    get_path,
    get_value,
    hashtags,
    is_empty,
    set_path,
    split_path,
    strip_tags,
    type_name,
    words,
)
from esmigrate.transform.rules import Rule


def _text(doc: Doc, path: tuple[str, ...]) -> str | None:
    value = get_value(doc, path)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RuleFailure(f"[{'.'.join(path)}] must be a string, not {type_name(value)}")
    return value


def _jtext(c: pl.Compiler, path: tuple[str, ...], var: str) -> str:
    """Painless: ``var`` = the string at ``path`` or null; fails like :func:`_text`."""
    p = c.path(path)
    raw = c.var("raw")
    return (
        f"def {raw} = jget(src, {p});\n"
        f"String {var} = {raw} == null ? null : jstr({raw}, {c.param('.'.join(path))});"
    )


class NormalizeText(Rule):
    """Strip HTML tags (``<...>``), collapse whitespace runs to one space, trim the ends.

    Absent and null values are left alone; a non-string fails the document.
    """

    def __init__(self, path: str, *, html: bool = True, name: str | None = None) -> None:
        super().__init__(name)
        self.path = split_path(path)
        self.html = html

    def describe(self) -> str:
        return f"normalize text {'.'.join(self.path)}"

    def apply(self, doc: Doc) -> None:
        text = _text(doc, self.path)
        if text is None:
            return
        if self.html:
            text = strip_tags(text)
        set_path(doc, self.path, collapse_whitespace(text))

    def painless(self, c: pl.Compiler) -> str | None:
        t = c.var("t")
        cleaned = f"jstrip({t})" if self.html else t
        return (
            _jtext(c, self.path, t)
            + f"\nif ({t} != null) {{ jset(src, {c.path(self.path)}, String.join(' ', jwords({cleaned}))); }}"
        )


class WordCount(Rule):
    """``target`` = the number of whitespace-separated words in ``source`` (0 when absent)."""

    def __init__(self, source: str, target: str, *, name: str | None = None) -> None:
        super().__init__(name)
        self.source, self.target = split_path(source), split_path(target)

    def describe(self) -> str:
        return f"word count {'.'.join(self.source)} → {'.'.join(self.target)}"

    def apply(self, doc: Doc) -> None:
        text = _text(doc, self.source)
        set_path(doc, self.target, len(words(text)) if text else 0)

    def painless(self, c: pl.Compiler) -> str | None:
        t = c.var("t")
        return (
            _jtext(c, self.source, t)
            + f"\njset(src, {c.path(self.target)}, {t} == null ? 0 : jwords({t}).size());"
        )


def _check_wpm(words_per_minute: int) -> int:
    if isinstance(words_per_minute, bool) or not isinstance(words_per_minute, int):
        raise ValueError("words_per_minute must be an integer")
    if not 1 <= words_per_minute <= 100_000:
        raise ValueError("words_per_minute must be between 1 and 100000")
    return words_per_minute


class ReadingTime(Rule):
    """``target`` = minutes to read ``source``: words ÷ ``words_per_minute``, rounded up."""

    def __init__(
        self, source: str, target: str, *, words_per_minute: int = 200, name: str | None = None
    ) -> None:
        super().__init__(name)
        self.source, self.target = split_path(source), split_path(target)
        self.wpm = _check_wpm(words_per_minute)

    def describe(self) -> str:
        return f"reading time {'.'.join(self.source)} → {'.'.join(self.target)}"

    def apply(self, doc: Doc) -> None:
        text = _text(doc, self.source)
        count = len(words(text)) if text else 0
        set_path(doc, self.target, (count + self.wpm - 1) // self.wpm)

    def painless(self, c: pl.Compiler) -> str | None:
        t, n = c.var("t"), c.var("n")
        return (
            _jtext(c, self.source, t)
            + f"\nint {n} = {t} == null ? 0 : jwords({t}).size();"
            + f"\njset(src, {c.path(self.target)}, ({n} + {self.wpm - 1}) / {self.wpm});"
        )


class ExtractHashtags(Rule):
    """``target`` = the ``#hashtags`` of ``source`` (without ``#``, first-seen order, unique).

    By default only fills an empty ``target`` (absent, null, ``[]``, ``""``); ``overwrite=True``
    always replaces it. ``lowercase`` folds ASCII case; ``limit`` keeps the first N.
    """

    def __init__(
        self,
        source: str = "content",
        target: str = "tags",
        *,
        limit: int | None = None,
        lowercase: bool = False,
        overwrite: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ValueError("limit must be a non-negative integer or None")
        self.source, self.target = split_path(source), split_path(target)
        self.limit, self.lowercase, self.overwrite = limit, lowercase, overwrite

    def describe(self) -> str:
        return f"hashtags {'.'.join(self.source)} → {'.'.join(self.target)}"

    def apply(self, doc: Doc) -> None:
        if not self.overwrite and not is_empty(get_path(doc, self.target)):
            return
        text = _text(doc, self.source)
        tags = hashtags(text) if text else []
        if self.lowercase:
            tags = list(dict.fromkeys(ascii_lower(tag) for tag in tags))
        if self.limit is not None:
            tags = tags[: self.limit]
        set_path(doc, self.target, tags)

    def painless(self, c: pl.Compiler) -> str | None:
        t, tags, target = c.var("t"), c.var("tags"), c.path(self.target)
        lines = [
            _jtext(c, self.source, t),
            f"List {tags} = {t} == null ? new ArrayList() : jtags({t});",
        ]
        if self.lowercase:
            low, x = c.var("low"), c.var("x")
            lines += [
                f"List {low} = new ArrayList();",
                f"for (def {x} : {tags}) {{ String y = jlower((String) {x}); if (!{low}.contains(y)) {{ {low}.add(y); }} }}",
                f"{tags} = {low};",
            ]
        if self.limit is not None:
            lines.append(
                f"if ({tags}.size() > {self.limit}) {{ {tags} = new ArrayList({tags}.subList(0, {self.limit})); }}"
            )
        lines.append(f"jset(src, {target}, {tags});")
        body = "\n".join(lines)
        if self.overwrite:
            return body
        return f"if (jempty(src, {target})) {{\n{body}\n}}"


#: The guide's keyword categories, in priority order.
DEFAULT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "technology": ("tech", "software", "programming", "api", "database"),
    "tutorial": ("how to", "guide", "tutorial", "step by step"),
    "news": ("news", "update", "announcement", "release"),
    "review": ("review", "opinion", "rating", "evaluation"),
}


class Categorize(Rule):
    """``target`` = the first category one of whose keywords occurs in the ``sources`` text.

    The sources (absent or null count as empty) are joined with a space and compared with
    ASCII case folded; ``default`` when no keyword matches.
    """

    def __init__(
        self,
        target: str = "category",
        sources: Sequence[str] = ("title", "content"),
        *,
        categories: Mapping[str, Iterable[str]] = DEFAULT_CATEGORIES,
        default: str = "general",
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.target = split_path(target)
        self.sources = tuple(split_path(s) for s in sources)
        self.categories = [
            (str(k), [ascii_lower(str(w)) for w in v]) for k, v in categories.items()
        ]
        for category, keywords in self.categories:
            if not keywords or any(not w for w in keywords):
                raise ValueError(f"category {category!r} needs non-empty keywords")
        self.default = default

    def describe(self) -> str:
        return f"categorize → {'.'.join(self.target)}"

    def apply(self, doc: Doc) -> None:
        text = ascii_lower(" ".join(_text(doc, s) or "" for s in self.sources))
        for category, keywords in self.categories:
            if any(word in text for word in keywords):
                set_path(doc, self.target, category)
                return
        set_path(doc, self.target, self.default)

    def painless(self, c: pl.Compiler) -> str | None:
        names = [c.var("t") for _ in self.sources]
        lines = [_jtext(c, s, n) for s, n in zip(self.sources, names, strict=True)]
        text, result, pair, word = c.var("text"), c.var("cat"), c.var("pair"), c.var("w")
        found = c.var("found")
        joined = " + ' ' + ".join(f"({n} == null ? '' : {n})" for n in names) or "''"
        lines += [
            f"String {text} = jlower({joined});",
            f"def {result} = {c.param(self.default)};",
            f"boolean {found} = false;",
            f"for (def {pair} : {c.param([[k, v] for k, v in self.categories])}) {{",
            f"  if (!{found}) {{ for (def {word} : {pair}.get(1)) {{ if (!{found} && {text}.contains((String) {word})) {{ {result} = {pair}.get(0); {found} = true; }} }} }}",
            "}",
            f"jset(src, {c.path(self.target)}, {result});",
        ]
        return "\n".join(lines)


class ExtractMetadata(Rule):
    """Set ``word_count``, ``char_count`` (code points), ``reading_time`` and ``has_title``
    under ``target`` (other keys there are kept)."""

    def __init__(
        self,
        target: str = "metadata",
        *,
        content: str = "content",
        title: str = "title",
        words_per_minute: int = 200,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.target = split_path(target)
        self.content, self.title = split_path(content), split_path(title)
        self.wpm = _check_wpm(words_per_minute)

    def describe(self) -> str:
        return f"metadata {'.'.join(self.content)} → {'.'.join(self.target)}"

    def apply(self, doc: Doc) -> None:
        text = _text(doc, self.content) or ""
        count = len(words(text))
        has_title = not is_empty(get_path(doc, self.title))
        for key, value in (
            ("word_count", count),
            ("char_count", len(text)),
            ("reading_time", (count + self.wpm - 1) // self.wpm),
            ("has_title", has_title),
        ):
            set_path(doc, (*self.target, key), value)

    def painless(self, c: pl.Compiler) -> str | None:
        t, n = c.var("t"), c.var("n")
        target = list(self.target)

        def under(key: str) -> str:
            return c.param([*target, key])

        titled = c.var("titled")
        # Every input is read before the first write: the target may contain the title.
        return "\n".join(
            [
                _jtext(c, self.content, t),
                f"if ({t} == null) {{ {t} = ''; }}",
                f"boolean {titled} = !jempty(src, {c.path(self.title)});",
                f"int {n} = jwords({t}).size();",
                f"jset(src, {under('word_count')}, {n});",
                f"jset(src, {under('char_count')}, {t}.codePointCount(0, {t}.length()));",
                f"jset(src, {under('reading_time')}, ({n} + {self.wpm - 1}) / {self.wpm});",
                f"jset(src, {under('has_title')}, {titled});",
            ]
        )
