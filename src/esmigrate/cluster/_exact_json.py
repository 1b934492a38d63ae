"""JSON that never changes a number: orjson for speed, the standard library where orjson cannot.

orjson parses integers beyond the 64-bit range into floats (silently losing digits) and refuses to
write them. ``_source`` can hold such integers (in an unmapped field, or one mapped as ``double``
or ``keyword``), and a migration must copy them digit for digit. A cheap scan for a run of 19 or
more digits sends the rare text that may hold one to the standard library, whose integers are
exact; everything else takes the fast path.

The scan maps every digit to ``0`` and looks for nineteen of them in a row: a search page of a
megabyte is scanned in under a millisecond, where the regular expression for it took ten
times as long as orjson took to parse the page.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_DIGITS = b"0" * 19


def loads(data: str | bytes) -> Any:
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_DIGITS in raw.translate(_DIGITS_AS_ZERO):
        return json.loads(raw)
    return orjson.loads(raw)


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    try:
        return orjson.dumps(value, default=default)
    except TypeError as exc:
        if "64-bit" not in str(exc):
            raise
        return json.dumps(
            value, default=default, ensure_ascii=False, separators=(",", ":")
        ).encode()
