"""The maintenance window gate of ``deploy --window``: refuse, or wait, before anything starts."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from esmigrate import command
from esmigrate.config import Config
from esmigrate.progress import Reporter
from esmigrate.schedule import Window, admit, format_duration, utc_now, wait_for


def enter_window(
    config: Config,
    target: str,
    windows: Sequence[Window],
    *,
    wait: bool,
    monitor_seconds: float,
    say: Reporter,
    on_estimate: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Return when the deploy may start inside one of ``windows``; raise
    :class:`~esmigrate.exceptions.OutsideWindow` when it may not.

    Outside every window, without ``wait``, it refuses at once (no request is sent). Otherwise
    the plan is estimated (:func:`esmigrate.command.plan` with ``estimate=True``: a timed
    sample copy into a scratch index) and the deploy is refused when the estimate plus
    ``monitor_seconds`` would not fit in the time left of the window it would run in, before
    any waiting; then, with ``wait``, it sleeps until the window opens (Ctrl-C stops it).
    ``on_estimate`` receives the estimate as soon as it is made. Returns the log step's details.
    """
    began = time.monotonic()
    # Refusing outside the window needs no estimate: the cheapest answer first.
    admit(windows, utc_now(), timedelta(0), wait=wait)
    estimate = command.plan(config, target, estimate=True)["estimate"]
    if on_estimate is not None:
        on_estimate(estimate)
    needed = timedelta(seconds=float(estimate["seconds"]) + monitor_seconds)
    opening = admit(windows, utc_now(), needed, wait=wait)
    say(
        f"maintenance window {opening.window.text!r}: needs about {format_duration(needed)} "
        f"(estimate {format_duration(timedelta(seconds=estimate['seconds']))} + monitoring "
        f"{format_duration(timedelta(seconds=monitor_seconds))}), ends {opening.end.isoformat()}"
    )
    waited = time.monotonic()
    wait_for(opening, say, utc_now)
    return {
        **opening.to_dict(),
        "estimate_seconds": estimate["seconds"],
        "needed_seconds": round(needed.total_seconds(), 1),
        "waited_seconds": round(time.monotonic() - waited, 1),
        "estimate_took_seconds": round(waited - began, 3),
    }
