"""The watch that turns a stop request or a lost lease into the one event a migrator polls."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from esmigrate.exceptions import LeaseLost, MigrationCancelled

#: How often the watch checks the stop request and renews or checks the lease, in seconds.
WATCH_EVERY_S = 0.25


@contextmanager
def stop_on_cancel_or_lost_lease(
    check_lease: Callable[[], object], cancel: threading.Event | None, *, name: str
) -> Iterator[threading.Event]:
    """Yield the event a migrator polls to stop at its next safe point.

    A thread sets it when CANCEL is set (Ctrl-C) or when CHECK_LEASE raises :class:`LeaseLost`
    (another runner took the lease over: going on would write beside it). The migrator then
    raises :class:`MigrationCancelled`; if the lease was the cause, the :class:`LeaseLost` is
    raised instead, so the caller learns why it stopped."""
    stop = threading.Event()
    finished = threading.Event()
    lost: list[LeaseLost] = []

    def watch() -> None:
        while not finished.wait(WATCH_EVERY_S):
            if cancel is not None and cancel.is_set():
                stop.set()
            try:
                check_lease()
            except LeaseLost as exc:
                lost.append(exc)
                stop.set()
            if stop.is_set():
                return

    watcher = threading.Thread(target=watch, name=name, daemon=True)
    watcher.start()
    try:
        yield stop
    except MigrationCancelled:
        if lost:
            raise lost[0] from None
        raise
    finally:
        finished.set()
        watcher.join()
