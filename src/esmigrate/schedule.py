"""Time for production runs: durations written the way Elasticsearch writes them (``10m``,
``24h``, ``7d``) and maintenance windows (``"Sat 02:00-04:00 Europe/Berlin"``).

No cluster here: ``deploy --window``, ``--cleanup-after`` and ``--older-than`` parse their
values here, and so does the project file (``[esmigrate.deploy]``); :func:`admit` decides
whether a deploy may run now (or after waiting, :func:`wait_for`) and fit in the window.

A window is ``DAYS START-END ZONE``: ``DAYS`` is a day (``Sat``), a range (``Mon-Fri``), a
comma list (``Sat,Sun``) or ``daily``; ``START``/``END`` are wall-clock times ``HH:MM`` (or
``HH:MM:SS``) in the IANA time zone ``ZONE`` (``UTC``, ``Europe/Berlin``); an ``END`` at or
before ``START`` ends the next day (``Fri 22:00-02:00``). Times are wall-clock times of the
zone, so a window keeps its local hours across daylight-saving changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from time import sleep
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from esmigrate.exceptions import ConfigError, OutsideWindow

#: Elasticsearch's time units (``TimeValue``), in seconds.
_UNITS: dict[str, float] = {
    "nanos": 1e-9,
    "micros": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(nanos|micros|ms|s|m|h|d)\s*$")
_NUMBER = re.compile(r"^\s*-?\d+(?:\.\d+)?\s*$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_EXAMPLE = '"Sat 02:00-04:00 Europe/Berlin", "Mon-Fri 22:00-02:00 UTC" or "daily 01:00-03:00 UTC"'


def parse_duration(value: str | float | int, *, what: str = "duration") -> timedelta:
    """``"10m"``, ``"24h"``, ``"7d"``, ``"1.5h"``, ``"500ms"`` as a :class:`timedelta` (a bare
    number is seconds, as the options that took seconds before had it). Raises
    :class:`ConfigError` naming ``what`` on anything else."""
    if isinstance(value, str) and _NUMBER.match(value):
        value = float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ConfigError(
                f"Invalid {what} {value!r}.",
                hint="Write it the way Elasticsearch does: a number and a unit among "
                "d, h, m, s, ms (e.g. 10m, 24h, 7d).",
            )
        seconds = float(match[1]) * _UNITS[match[2]]
    if seconds < 0:
        raise ConfigError(f"Invalid {what} {value!r}: it is negative.", hint="Give 0 or more.")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """A short human form: ``2h05m``, ``3d4h``, ``45s``."""
    total = max(0, round(delta.total_seconds()))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{seconds:02d}s" if seconds else f"{minutes}m"
    return f"{seconds}s"


@dataclass(frozen=True)
class Opening:
    """One occurrence of a window: ``start`` to ``end`` (aware datetimes)."""

    window: Window
    start: datetime
    end: datetime

    def contains(self, now: datetime) -> bool:
        return self.start <= now < self.end

    def to_dict(self) -> dict[str, str]:
        return {
            "window": self.window.text,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


@dataclass(frozen=True)
class Window:
    """A weekly maintenance window (:func:`parse_window`)."""

    text: str
    #: Weekdays the window opens on (0 = Monday).
    days: frozenset[int]
    start: time
    end: time
    zone: str

    def opening(self, now: datetime) -> Opening:
        """The occurrence open at ``now`` (aware), or else the next one to open."""
        tz = ZoneInfo(self.zone)
        local = now.astimezone(tz).date()
        found: list[Opening] = []
        # From yesterday (a window crossing midnight may still be open) to a week ahead.
        for offset in range(-1, 8):
            day = local + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            opening = self._on(day, tz)
            if opening.end > now:
                found.append(opening)
        return min(found, key=lambda o: o.start)

    def _on(self, day: date, tz: ZoneInfo) -> Opening:
        start = datetime.combine(day, self.start, tz)
        end_day = day + timedelta(days=1) if self.end <= self.start else day
        end = datetime.combine(end_day, self.end, tz)
        # Compare in UTC: aware datetimes of one zone compare by wall time otherwise.
        return Opening(self, start.astimezone(UTC), end.astimezone(UTC))


def _days(spec: str, text: str) -> frozenset[int]:
    if spec.lower() in ("daily", "*"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in spec.lower().split(","):
        first, _, last = part.partition("-")
        try:
            a = _DAYS.index(first[:3]) if len(first) >= 3 else -1
            b = _DAYS.index(last[:3]) if last else a
        except ValueError:
            a = b = -1
        if a < 0 or b < 0:
            raise ConfigError(
                f"Invalid maintenance window {text!r}: {part!r} is not a day.",
                hint=f"Days are Mon..Sun, a range (Mon-Fri), a list (Sat,Sun) or daily: {_EXAMPLE}.",
            )
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


def _time(value: str, text: str) -> time:
    try:
        return time.fromisoformat(value if value.count(":") else "")
    except ValueError:
        raise ConfigError(
            f"Invalid maintenance window {text!r}: {value!r} is not a time.",
            hint=f"Times are HH:MM (24 h) in the window's time zone: {_EXAMPLE}.",
        ) from None


def parse_window(text: str) -> Window:
    """Parse ``"DAYS HH:MM-HH:MM ZONE"`` (see the module); :class:`ConfigError` on bad input."""
    parts = text.split()
    if len(parts) != 3 or parts[1].count("-") != 1:
        raise ConfigError(
            f"Invalid maintenance window {text!r}.",
            hint=f"Write DAYS START-END ZONE, e.g. {_EXAMPLE}.",
        )
    days_spec, hours, zone = parts
    start_text, end_text = hours.split("-")
    start, end = _time(start_text, text), _time(end_text, text)
    if start == end:
        raise ConfigError(
            f"Invalid maintenance window {text!r}: it starts and ends at {start_text}.",
            hint="Give a window that lasts: START-END, e.g. 02:00-04:00.",
        )
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"Invalid maintenance window {text!r}: unknown time zone {zone!r}.",
            hint="Use an IANA time zone name such as UTC, Europe/Berlin or America/New_York.",
        ) from None
    return Window(text, _days(days_spec, text), start, end, zone)


def next_opening(windows: Sequence[Window], now: datetime) -> Opening:
    """Of several windows, the occurrence open at ``now`` (the one lasting longest if several
    are), or else the next to open."""
    openings = [w.opening(now) for w in windows]
    open_now = [o for o in openings if o.contains(now)]
    if open_now:
        return max(open_now, key=lambda o: o.end)
    return min(openings, key=lambda o: o.start)


def _when(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%a %Y-%m-%d %H:%M} {local.tzname()} ({moment.astimezone(UTC):%H:%M} UTC)"


def admit(windows: Sequence[Window], now: datetime, needed: timedelta, *, wait: bool) -> Opening:
    """The window opening a deploy needing ``needed`` runs in, or :class:`OutsideWindow`.

    Open now: admitted when ``needed`` fits in the time left. Closed: refused, unless ``wait``,
    then admitted (to be waited for) when ``needed`` fits in the next opening. The refusal
    says when the next window opens.
    """
    opening = next_opening(windows, now)
    is_open = opening.contains(now)
    if not is_open and not wait:
        raise OutsideWindow(
            f"Outside the maintenance window: the next one, {opening.window.text!r}, opens "
            f"{_when(opening.start, opening.window.zone)}, in {format_duration(opening.start - now)}.",
            window=opening.window.text,
            next_opening=opening.start.isoformat(),
            hint="Deploy then, or pass --wait-for-window to wait for it here (Ctrl-C stops "
            "waiting; nothing has started).",
        )
    left = opening.end - max(now, opening.start)
    if needed > left:
        later = next_opening(windows, opening.end)
        raise OutsideWindow(
            f"The deploy would not finish inside the maintenance window {opening.window.text!r}: "
            f"it needs about {format_duration(needed)} by the plan's estimate, and "
            f"{'the window has' if is_open else 'the next opening has'} {format_duration(left)} "
            f"left; nothing was started.",
            window=opening.window.text,
            next_opening=later.start.isoformat(),
            estimate_seconds=round(needed.total_seconds(), 1),
            hint="Declare a longer window (--window or [esmigrate.deploy] windows), speed the "
            "copy up, or split the migration; `esmigrate plan --estimate` shows the estimate.",
        )
    return opening


def wait_for(opening: Opening, say: Callable[[str], None], clock: Callable[[], datetime]) -> None:
    """Sleep until ``opening`` starts, in short steps so Ctrl-C stops it at once (it raises
    :class:`KeyboardInterrupt`, with nothing started)."""
    now = clock()
    if opening.start <= now:
        return
    say(
        f"waiting for the maintenance window {opening.window.text!r}: it opens "
        f"{_when(opening.start, opening.window.zone)}, in {format_duration(opening.start - now)}"
    )
    while (left := (opening.start - clock()).total_seconds()) > 0:
        sleep(min(left, 1.0))


def utc_now() -> datetime:
    return datetime.now(UTC)
