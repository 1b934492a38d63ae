"""Index and alias names: the rules both engines apply, checked before a name reaches a URL.

A name is put into request paths (``/{name}/_search``), so one that is not a valid index or alias
name is worse than a refused request: ``_all`` or ``*`` names every index, ``a,b`` two of them,
``../x`` or ``a/b`` another endpoint. A migration given such a name must stop before its first
request, with the rule it broke, instead of reading or writing the wrong indices.

The rules are Elasticsearch's and OpenSearch's (``MetadataCreateIndexService
.validateIndexOrAliasName``): not empty, at most 255 bytes, lowercase, none of
``\\ / * ? " < > | , #``, no space, no ``:``, not ``.`` or ``..``, not starting with ``_``, ``-``
or ``+``. A leading ``.`` (a hidden or system-like index) is allowed: esmigrate's own state index is
``.esmigrate``.
"""

from __future__ import annotations

from esmigrate.exceptions import PreflightError

_FORBIDDEN = '\\/*?"<>|,#: '


def name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as an index or alias name, or None when nothing is."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if name in (".", ".."):
        return f"{name!r} is not a name"
    if name[0] in "_-+":
        return f"it starts with {name[0]!r}"
    bad = sorted({c for c in name if c in _FORBIDDEN or ord(c) < 32})
    if bad:
        shown = ", ".join("space" if c == " " else repr(c) for c in bad)
        return f"it contains {shown}"
    if name != name.lower():
        return "it has uppercase letters"
    if len(name.encode("utf-8")) > 255:
        return "it is longer than 255 bytes"
    return None


def check_name(name: str, role: str = "index or alias") -> str:
    """``name`` if it is a valid index or alias name; else :class:`PreflightError`
    (``invalid_name``) naming the ``role`` it was given for and the rule it breaks."""
    problem = name_problem(name)
    if problem is not None:
        raise PreflightError(
            f"{name!r} is not a valid {role} name: {problem}.",
            problem="invalid_name",
            hint="Index and alias names are lowercase, do not start with '_', '-' or '+', and "
            'contain none of \\ / * ? " < > | , # : or spaces; name one index or alias (no '
            "wildcards, lists or _all).",
        )
    return name
