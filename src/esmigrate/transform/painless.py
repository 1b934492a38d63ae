"""Compile a rule set to one Painless script for ``_reindex`` / ``_update_by_query``.

The helpers below are the Painless twins of :mod:`esmigrate.transform._paths`; a rule compiles
only when its Painless does exactly what its Python does (``tests/test_transform_painless.py``
checks that on generated documents against the real engine). Each rule runs inside its own
``try``: a failure is rethrown as ``rule "<name>": <reason>``, so the engine's failure names the
rule as the Python path's :class:`~esmigrate.exceptions.TransformError` does.

Painless string literals know no ``\\t``-style escapes and regexes may be disabled on a cluster,
so the helpers use neither; and a script may run at most 1,000,000 loop iterations, so text is
scanned with ``indexOf``/``replace``/``splitOnToken`` rather than character by character.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Scripts larger than this are refused by the engines (``script.max_size_in_bytes``).
MAX_SCRIPT_BYTES = 65_535

_WS = "".join(f'.replace(Character.toString((char) {c}), " ")' for c in (9, 10, 11, 12, 13))
_LOWER = "".join(f'.replace("{chr(c)}", "{chr(c + 32)}")' for c in range(65, 91))

PRELUDE = (
    """
boolean jhas(Map m, List p) {
  def cur = m;
  for (int i = 0; i < p.size(); ++i) {
    if (!(cur instanceof Map)) { return false; }
    Map mm = (Map) cur;
    if (!mm.containsKey(p.get(i))) { return false; }
    cur = mm.get(p.get(i));
  }
  return true;
}
def jget(Map m, List p) {
  def cur = m;
  for (int i = 0; i < p.size(); ++i) {
    if (!(cur instanceof Map)) { return null; }
    cur = ((Map) cur).get(p.get(i));
  }
  return cur;
}
void jset(Map m, List p, def v) {
  Map cur = m;
  for (int i = 0; i < p.size() - 1; ++i) {
    def nxt = cur.get(p.get(i));
    if (nxt == null) { nxt = new HashMap(); cur.put(p.get(i), nxt); }
    else if (!(nxt instanceof Map)) {
      throw new IllegalArgumentException("cannot set [" + String.join(".", p) + "]: [" + p.get(i) + "] is not an object");
    }
    cur = (Map) nxt;
  }
  cur.put(p.get(p.size() - 1), v);
}
boolean jdel(Map m, List p) {
  def cur = m;
  for (int i = 0; i < p.size() - 1; ++i) {
    if (!(cur instanceof Map)) { return false; }
    cur = ((Map) cur).get(p.get(i));
  }
  if (!(cur instanceof Map)) { return false; }
  Map mm = (Map) cur;
  String last = p.get(p.size() - 1);
  if (!mm.containsKey(last)) { return false; }
  mm.remove(last);
  return true;
}
def jcopy(def v) {
  if (v instanceof Map) {
    Map out = new HashMap();
    for (def e : ((Map) v).entrySet()) { out.put(e.getKey(), jcopy(e.getValue())); }
    return out;
  }
  if (v instanceof List) {
    List out = new ArrayList();
    for (def x : (List) v) { out.add(jcopy(x)); }
    return out;
  }
  return v;
}
boolean jint(def v) {
  return v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte || v instanceof BigInteger;
}
boolean jflt(def v) { return v instanceof Double || v instanceof Float; }
String jtype(def v) {
  if (v == null) { return "null"; }
  if (v instanceof Boolean) { return "boolean"; }
  if (jint(v) || jflt(v)) { return "number"; }
  if (v instanceof String) { return "string"; }
  if (v instanceof List) { return "array"; }
  if (v instanceof Map) { return "object"; }
  return "unknown";
}
boolean jeq(def a, def b) {
  if (a == null || b == null) { return a == null && b == null; }
  if (a instanceof Boolean || b instanceof Boolean) {
    return a instanceof Boolean && b instanceof Boolean && ((Boolean) a).booleanValue() == ((Boolean) b).booleanValue();
  }
  if (jint(a) && jint(b)) { return a.toString().equals(b.toString()); }
  if ((jint(a) || jflt(a)) && (jint(b) || jflt(b))) {
    if (jflt(a) && jflt(b)) { return ((Number) a).doubleValue() == ((Number) b).doubleValue(); }
    def i = jint(a) ? a : b;
    double d = jflt(a) ? ((Number) a).doubleValue() : ((Number) b).doubleValue();
    if (d != Math.floor(d) || d < -9.223372036854775808E18 || d >= 9.223372036854775808E18) { return false; }
    if (i instanceof BigInteger) { return false; }
    return ((long) d) == ((Number) i).longValue();
  }
  if (a instanceof String && b instanceof String) { return ((String) a).equals((String) b); }
  if (a instanceof List && b instanceof List) {
    List la = (List) a; List lb = (List) b;
    if (la.size() != lb.size()) { return false; }
    for (int k = 0; k < la.size(); ++k) { if (!jeq(la.get(k), lb.get(k))) { return false; } }
    return true;
  }
  if (a instanceof Map && b instanceof Map) {
    Map ma = (Map) a; Map mb = (Map) b;
    if (ma.size() != mb.size()) { return false; }
    for (def e : ma.entrySet()) {
      if (!mb.containsKey(e.getKey()) || !jeq(e.getValue(), mb.get(e.getKey()))) { return false; }
    }
    return true;
  }
  return false;
}
boolean jin(def v, List values) {
  for (def x : values) { if (jeq(v, x)) { return true; } }
  return false;
}
boolean jempty(Map m, List p) {
  if (!jhas(m, p)) { return true; }
  def v = jget(m, p);
  if (v == null) { return true; }
  if (v instanceof String) { return ((String) v).isEmpty(); }
  if (v instanceof List) { return ((List) v).isEmpty(); }
  if (v instanceof Map) { return ((Map) v).isEmpty(); }
  return false;
}
String jstr(def v, String path) {
  if (!(v instanceof String)) {
    throw new IllegalArgumentException("[" + path + "] must be a string, not " + jtype(v));
  }
  return (String) v;
}
List jwords(String s) {
  String t = s"""
    + _WS
    + """;
  List out = new ArrayList();
  for (String w : t.splitOnToken(" ")) { if (!w.isEmpty()) { out.add(w); } }
  return out;
}
String jlower(String s) { return s"""
    + _LOWER
    + """; }
String jstrip(String t) {
  StringBuilder sb = new StringBuilder();
  int i = 0; int n = t.length(); boolean more = true;
  while (more && i < n) {
    int lt = t.indexOf("<", i);
    if (lt < 0) { more = false; continue; }
    int gt = t.indexOf(">", lt + 1);
    if (gt < 0) { more = false; continue; }
    if (gt == lt + 1) { sb.append(t.substring(i, lt + 1)); i = lt + 1; continue; }
    sb.append(t.substring(i, lt));
    i = gt + 1;
  }
  if (i < n) { sb.append(t.substring(i)); }
  return sb.toString();
}
boolean jword(char c) {
  return (c >= (char) 'a' && c <= (char) 'z') || (c >= (char) 'A' && c <= (char) 'Z') || (c >= (char) '0' && c <= (char) '9') || c == (char) '_';
}
List jtags(String t) {
  List out = new ArrayList();
  int i = 0; int n = t.length(); boolean more = true;
  while (more && i < n) {
    int at = t.indexOf("#", i);
    if (at < 0) { more = false; continue; }
    int j = at + 1;
    while (j < n && jword(t.charAt(j))) { ++j; }
    if (j > at + 1) {
      String tag = t.substring(at + 1, j);
      if (!out.contains(tag)) { out.add(tag); }
      i = j;
    } else {
      i = at + 1;
    }
  }
  return out;
}
"""
)


class Compiler:
    """Collects params and fresh variable names while rules emit their Painless."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self._counter = 0

    def param(self, value: Any) -> str:
        """A Painless expression reading ``value`` from the script params (never a literal:
        params keep JSON types exactly and need no escaping)."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"params.{name}"

    def path(self, parts: tuple[str, ...]) -> str:
        return self.param(list(parts))

    def var(self, stem: str = "v") -> str:
        self._counter += 1
        return f"{stem}{self._counter}"

    def wrap(self, rule_name: str, body: str) -> str:
        """Run ``body`` so any exception is rethrown naming the rule."""
        label = self.param(f'rule "{rule_name}": ')
        err = self.var("e")
        return (
            f"try {{\n{_indent(body)}\n}} catch (Exception {err}) {{\n"
            f"  throw new IllegalArgumentException({label} + {err}.getMessage());\n}}"
        )


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


def script(
    body: str, params: dict[str, Any], functions: list[str] | None = None
) -> dict[str, Any] | None:
    """The script dict, or None when it would exceed the engines' size limit."""
    extra = "".join(f.strip() + "\n" for f in functions or [])
    source = PRELUDE.strip() + "\n" + extra + "Map src = ctx._source;\n" + body + "\n"
    if len(source.encode()) > MAX_SCRIPT_BYTES:
        return None
    return {"lang": "painless", "source": source, "params": params}


#: The keys of an ingest pipeline's ``ctx`` that are the request's metadata, not ``_source``.
INGEST_METADATA = (
    "_index",
    "_id",
    "_routing",
    "_version",
    "_version_type",
    "_if_seq_no",
    "_if_primary_term",
    "_op_type",
    "_ingest",
    "_now",
)


def ingest_script(
    body: str, params: dict[str, Any], functions: list[str] | None = None
) -> dict[str, Any] | None:
    """``body`` (compiled rules over ``src``) as an ingest ``script`` processor's script, or
    None when it would exceed the engines' size limit.

    An ingest ``ctx`` holds the document's fields beside its metadata (``_index``, ``_id``...),
    so the rules run on a map of the fields alone, which then replaces them: a rule that empties
    or rebuilds the document never touches the metadata."""
    extra = "".join(f.strip() + "\n" for f in functions or [])
    source = (
        PRELUDE.strip()
        + "\n"
        + extra
        + "Map src = new HashMap();\n"
        + "for (def k : ctx.keySet()) { if (!params.ingest_metadata.contains(k)) { src.put(k, ctx.get(k)); } }\n"
        + body
        + "\nfor (def k : new ArrayList(ctx.keySet())) { if (!params.ingest_metadata.contains(k)) { ctx.remove(k); } }\n"
        + "ctx.putAll(src);\n"
    )
    if len(source.encode()) > MAX_SCRIPT_BYTES:
        return None
    return {
        "lang": "painless",
        "source": source,
        "params": {**params, "ingest_metadata": list(INGEST_METADATA)},
    }


def ingest_condition(test: str, params: dict[str, Any]) -> dict[str, Any]:
    """A compiled condition (a boolean expression over ``src``) as an ingest processor's ``if``
    script: it reads the ingest ``ctx`` (fields and metadata) and changes nothing."""
    source = PRELUDE.strip() + "\nMap src = ctx;\nreturn " + test + ";\n"
    return {"lang": "painless", "source": source, "params": params}


_FAILURE = re.compile(r'rule "(?P<rule>(?:[^"\\]|\\.)*)": (?P<reason>.*)', re.DOTALL)


def parse_failure(reason: str) -> tuple[str, str] | None:
    """``(rule name, reason)`` from an engine failure reason produced by a compiled rule set.

    The engines prefix the message (``runtime error: rule "x": ...``); the first ``rule "..."``
    wins.
    """
    match = _FAILURE.search(reason)
    if match is None:
        return None
    return match.group("rule"), match.group("reason")


# -- scripts users write --------------------------------------------------------------------------


def normalize_script(script: Mapping[str, Any] | str | None) -> dict[str, Any] | None:
    """A painless script as the ``script`` object of a request: a source string, or a script
    object with ``source`` (or a stored script's ``id``); ``lang`` defaults to painless.

    The one normaliser of scripts users give (``op.reindex``, ``op.update_by_query``,
    ``op.migrate``, :class:`~esmigrate.migrate.BlueGreen`...)."""
    if script is None:
        return None
    if isinstance(script, str):
        return {"lang": "painless", "source": script}
    out = dict(script)
    out.setdefault("lang", "painless")
    if "source" not in out and "id" not in out:
        raise ValueError("a script needs 'source' (or a stored script 'id')")
    return out


_FUNCTION_HEAD = re.compile(
    r"[A-Za-z_][\w.]*(?:\s*<[^;{}()]*>)?(?:\s*\[\s*\])*\s+[A-Za-z_]\w*\s*\([^;{}()]*\)\s*\{"
)


def _skip_blank(source: str, pos: int) -> int:
    """Past whitespace and comments from ``pos``."""
    while pos < len(source):
        if source[pos].isspace():
            pos += 1
        elif source.startswith("//", pos):
            end = source.find("\n", pos)
            pos = len(source) if end < 0 else end + 1
        elif source.startswith("/*", pos):
            end = source.find("*/", pos + 2)
            pos = len(source) if end < 0 else end + 2
        else:
            break
    return pos


def _block_end(source: str, pos: int) -> int:
    """Index just past the ``}`` closing the ``{`` at ``pos`` (strings and comments skipped)."""
    depth = 0
    while pos < len(source):
        ch = source[pos]
        if ch in "'\"":
            pos += 1
            while pos < len(source) and source[pos] != ch:
                pos += 2 if source[pos] == "\\" else 1
        elif source.startswith("//", pos) or source.startswith("/*", pos):
            pos = _skip_blank(source, pos) - 1
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return pos + 1
        pos += 1
    raise ValueError("unbalanced braces in the painless script")


def split_functions(source: str) -> tuple[str, str]:
    """``(functions, statements)``: the function declarations a script starts with, and the rest.

    Painless allows functions only at the top of a script, so a wrapper that puts the statements
    in a block must keep the functions out of it (compiled rule sets start with their helpers).
    """
    pos = _skip_blank(source, 0)
    start = pos
    while (match := _FUNCTION_HEAD.match(source, pos)) is not None:
        if match.group(0).split(None, 1)[0] in ("return", "new", "else", "throw"):
            break
        pos = _skip_blank(source, _block_end(source, match.end() - 1))
    return source[start:pos], source[pos:]
