"""Casting a field's value: in Python (:func:`cast_value`) and as the Painless functions a
compiled :class:`~esmigrate.transform.Cast` calls, with the same result for every JSON value."""

from __future__ import annotations

import re
from typing import Any, Literal

from esmigrate.transform._paths import LONG_MAX, LONG_MIN, RuleFailure, is_float, is_int, type_name

CastTarget = Literal["string", "integer", "float", "boolean"]
_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def cast_value(value: Any, to: CastTarget) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [cast_value(item, to) for item in value]
    kind = type_name(value)
    if to == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if is_int(value):
            return str(value)
        if is_float(value):
            # Python and Java print doubles differently (1e+20 / 1.0E20): refuse rather than
            # produce two different documents.
            raise RuleFailure(f"cannot cast the floating-point number {value!r} to a string")
    elif to == "integer":
        if is_int(value):
            return value
        if is_float(value):
            if value == int(value) and LONG_MIN <= value < 2.0**63:
                return int(value)
            raise RuleFailure(
                f"cannot cast {value!r} to an integer: it has a fraction or is too large"
            )
        if isinstance(value, str):
            if _INTEGER.fullmatch(value) is None:
                raise RuleFailure(f"cannot cast the string {value!r} to an integer")
            number = int(value)
            if not LONG_MIN <= number <= LONG_MAX:
                raise RuleFailure(f"cannot cast the string {value!r} to an integer: out of range")
            return number
    elif to == "float":
        if is_float(value):
            return value
        if is_int(value):
            try:
                return float(value)
            except OverflowError:
                raise RuleFailure(f"cannot cast {value} to a float: too large") from None
        if isinstance(value, str):
            if _FLOAT.fullmatch(value) is None:
                raise RuleFailure(f"cannot cast the string {value!r} to a float")
            parsed = float(value)
            if parsed in (float("inf"), float("-inf")):
                raise RuleFailure(f"cannot cast the string {value!r} to a float: too large")
            return parsed
    elif to == "boolean":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
    raise RuleFailure(f"cannot cast {kind} {value!r} to {to}")


CAST_PAINLESS = {
    "string": """
String jcast_string(def v) {
  if (v instanceof String) { return (String) v; }
  if (v instanceof Boolean) { return ((Boolean) v).booleanValue() ? "true" : "false"; }
  if (jint(v)) { return v.toString(); }
  if (jflt(v)) { throw new IllegalArgumentException("cannot cast the floating-point number " + v + " to a string"); }
  throw new IllegalArgumentException("cannot cast " + jtype(v) + " to string");
}""",
    "integer": """
def jcast_integer(def v) {
  if (jint(v)) { return v; }
  if (jflt(v)) {
    double d = ((Number) v).doubleValue();
    if (d == Math.floor(d) && d >= -9.223372036854775808E18 && d < 9.223372036854775808E18) { return (long) d; }
    throw new IllegalArgumentException("cannot cast " + v + " to an integer: it has a fraction or is too large");
  }
  if (v instanceof String) {
    String s = (String) v;
    int start = s.length() > 0 && (s.charAt(0) == (char) '+' || s.charAt(0) == (char) '-') ? 1 : 0;
    boolean ok = s.length() > start;
    for (int i = start; i < s.length() && ok; ++i) { char ch = s.charAt(i); ok = ch >= (char) '0' && ch <= (char) '9'; }
    if (!ok) { throw new IllegalArgumentException("cannot cast the string '" + s + "' to an integer"); }
    return Long.parseLong(s);
  }
  throw new IllegalArgumentException("cannot cast " + jtype(v) + " to integer");
}""",
    "float": """
def jcast_float(def v) {
  if (jflt(v)) { return v; }
  if (jint(v)) {
    double d = ((Number) v).doubleValue();
    if (Double.isInfinite(d)) { throw new IllegalArgumentException("cannot cast " + v + " to a float: too large"); }
    return d;
  }
  if (v instanceof String) {
    String s = (String) v; int n = s.length(); int i = 0;
    if (i < n && (s.charAt(i) == (char) '+' || s.charAt(i) == (char) '-')) { ++i; }
    int digits = 0;
    while (i < n && s.charAt(i) >= (char) '0' && s.charAt(i) <= (char) '9') { ++i; ++digits; }
    if (i < n && s.charAt(i) == (char) '.') {
      ++i;
      while (i < n && s.charAt(i) >= (char) '0' && s.charAt(i) <= (char) '9') { ++i; ++digits; }
    }
    boolean ok = digits > 0;
    if (ok && i < n && (s.charAt(i) == (char) 'e' || s.charAt(i) == (char) 'E')) {
      ++i;
      if (i < n && (s.charAt(i) == (char) '+' || s.charAt(i) == (char) '-')) { ++i; }
      int exp = 0;
      while (i < n && s.charAt(i) >= (char) '0' && s.charAt(i) <= (char) '9') { ++i; ++exp; }
      ok = exp > 0;
    }
    if (!ok || i != n) { throw new IllegalArgumentException("cannot cast the string '" + s + "' to a float"); }
    double d = Double.parseDouble(s);
    if (Double.isInfinite(d)) { throw new IllegalArgumentException("cannot cast the string '" + s + "' to a float: too large"); }
    return d;
  }
  throw new IllegalArgumentException("cannot cast " + jtype(v) + " to float");
}""",
    "boolean": """
def jcast_boolean(def v) {
  if (v instanceof Boolean) { return v; }
  if ("true".equals(v)) { return true; }
  if ("false".equals(v)) { return false; }
  throw new IllegalArgumentException("cannot cast " + jtype(v) + " to boolean");
}""",
}
CAST_LIST = """
def jcast_all_{to}(def v) {{
  if (v == null) {{ return null; }}
  if (v instanceof List) {{
    List out = new ArrayList();
    for (def x : (List) v) {{ out.add(jcast_all_{to}(x)); }}
    return out;
  }}
  return jcast_{to}(v);
}}"""
