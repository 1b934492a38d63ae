"""The lease: one runner at a time per history index, and never stuck after a crash.

A lease is the document ``lease`` in the history index: owner id, host, pid and an expiry. It is
taken with ``op_type=create``, or by a compare-and-set over an expired one; a heartbeat thread
pushes the expiry forward (compare-and-set again) while the runner works. A runner killed with
SIGKILL stops renewing, so its lease lapses after ``ttl`` seconds and the next runner takes it
over. A runner that finds its lease taken over stops before its next operation.

Expiry is judged by wall clocks: the machines that run esmigrate should keep them in sync (NTP);
a skew of more than the TTL could let a waiting runner take over a live lease.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import Any

from esmigrate.exceptions import ClusterError, ConflictError, LeaseHeld, LeaseLost, NotFoundError
from esmigrate.runtime._history import (
    LEASE_ID,
    HistoryStore,
    Identity,
    Stored,
    Version,
    now,
    parse_timestamp,
    timestamp,
)


def _expired(doc: dict[str, Any]) -> bool:
    try:
        return parse_timestamp(str(doc["expires_at"])) <= now()
    except (KeyError, ValueError):
        return True  # unreadable: treat as abandoned rather than stuck forever


def describe_holder(doc: dict[str, Any]) -> str:
    return (
        f"{doc.get('owner', '?')} (user {doc.get('user', '?')}, command {doc.get('command', '?')})"
    )


class Lease:
    """Exclusive right to run migrations against one history index. Use as a context manager
    after :meth:`acquire`, or call :meth:`release`."""

    def __init__(
        self,
        store: HistoryStore,
        identity: Identity,
        *,
        ttl: float = 60.0,
        command: str = "upgrade",
        reporter: Callable[[str], None] | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError("the lease TTL must be positive")
        self.store = store
        self.identity = identity
        self.ttl = ttl
        self.command = command
        self.report = reporter or (lambda _msg: None)
        self.taken_over: dict[str, Any] | None = None
        self._version: Version | None = None
        self._acquired_at = timestamp()
        self._expires = 0.0  # time.monotonic() deadline of the last successful renewal
        self._lost: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- taking ---------------------------------------------------------------------------------

    def _doc(self) -> dict[str, Any]:
        moment = now()
        return {
            "kind": "lease",
            **self.identity.to_dict(),
            "command": self.command,
            "acquired_at": self._acquired_at,
            "renewed_at": timestamp(moment),
            "expires_at": timestamp(moment + timedelta(seconds=self.ttl)),
            "ttl_s": self.ttl,
        }

    def acquire(self, timeout: float) -> Lease:
        """Take the lease, waiting up to ``timeout`` seconds for a holder to release it or for
        its expiry. Raises :class:`~esmigrate.exceptions.LeaseHeld` naming the holder."""
        deadline = time.monotonic() + max(timeout, 0.0)
        self._acquired_at = timestamp()
        waiting_for: str | None = None
        while True:
            started = time.monotonic()
            try:
                self._version = self.store.create(LEASE_ID, self._doc())
                break
            except ConflictError:
                pass
            current = self.store.get(LEASE_ID)
            if current is None:
                continue  # released between our two requests
            if _expired(current.doc):
                if self._take_over(current):
                    break
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._held(current, timeout)
            if waiting_for != current.doc.get("owner"):
                waiting_for = str(current.doc.get("owner"))
                self.report(
                    f"Waiting for the lease on {self.store.index} held by "
                    f"{describe_holder(current.doc)}, expiring at {current.doc.get('expires_at')} "
                    f"unless renewed (waiting up to {timeout:g} s)."
                )
            until_expiry = (parse_timestamp(str(current.doc["expires_at"])) - now()).total_seconds()
            time.sleep(max(0.05, min(1.0, remaining, until_expiry + 0.05)))
        self._expires = started + self.ttl
        self._start_heartbeat()
        return self

    def _take_over(self, current: Stored) -> bool:
        try:
            self._version = self.store.replace(LEASE_ID, self._doc(), current.version)
        except ConflictError:
            return False  # someone else took it first; look again
        self.taken_over = current.doc
        self.report(
            f"Took over the expired lease of {describe_holder(current.doc)} "
            f"(expired at {current.doc.get('expires_at')})."
        )
        return True

    def _held(self, current: Stored, timeout: float) -> LeaseHeld:
        doc = current.doc
        return LeaseHeld(
            f"Another esmigrate runner holds the lease on history index {self.store.index!r}: "
            f"{describe_holder(doc)}, on host {doc.get('host')} (pid {doc.get('pid')}), "
            f"until {doc.get('expires_at')} unless it renews it; waited {timeout:g} s.",
            owner=str(doc.get("owner")),
            host=doc.get("host"),
            pid=doc.get("pid"),
            expires_at=doc.get("expires_at"),
            hint="Let it finish and run again, or wait longer with --lock-timeout. If that "
            "runner is dead, its lease lapses at the expiry and the next run takes it over.",
        )

    # -- keeping --------------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, name=f"esmigrate-lease-{self.store.index}", daemon=True
        )
        self._thread.start()

    def _beat(self) -> None:
        interval = self.ttl / 3
        while not self._stop.wait(interval):
            if not self.renew():
                return

    def renew(self) -> bool:
        """Push the expiry forward; False once the lease is lost."""
        with self._lock:
            if self._lost is not None or self._version is None:
                return False
            started = time.monotonic()
            doc = self._doc()
            try:
                self._version = self.store.replace(LEASE_ID, doc, self._version)
            except (ConflictError, NotFoundError):
                self._lost = "another runner took it over (its expiry had passed)"
                return False
            except ClusterError as exc:
                if time.monotonic() >= self._expires:
                    self._lost = f"it could not be renewed before it expired ({exc.message})"
                    return False
                return True  # transient: try again at the next beat
            self._expires = started + self.ttl
            return True

    def check(self) -> None:
        """Raise :class:`~esmigrate.exceptions.LeaseLost` unless the lease is still ours."""
        with self._lock:
            if self._lost is None and time.monotonic() >= self._expires:
                self._lost = "it expired before a heartbeat renewed it"
            lost = self._lost
        if lost is not None:
            raise LeaseLost(
                f"This runner lost its lease on history index {self.store.index!r}: {lost}. "
                "It stopped before the next operation.",
                hint="Run `esmigrate status`: the runner that holds the lease now reports the "
                "interrupted revision as failed; after checking it, `esmigrate repair` and "
                "`esmigrate upgrade` finish it. A longer lease_ttl helps on slow networks.",
            )

    # -- giving back ----------------------------------------------------------------------------

    def release(self) -> None:
        """Stop the heartbeat and delete the lease (if still ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            version, self._version = self._version, None
            lost = self._lost is not None
        if version is None or lost:
            return
        try:
            self.store.delete(LEASE_ID, version)
        except (ConflictError, NotFoundError):
            pass  # taken over meanwhile: it is not ours to delete
        except ClusterError as exc:
            # Not fatal: the lease lapses at its expiry. Said, not hidden.
            self.report(
                f"Could not release the lease on {self.store.index} ({exc.message}); "
                f"it lapses within {self.ttl:g} s."
            )

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def read_lease(store: HistoryStore) -> dict[str, Any] | None:
    """The lease document with ``expired`` added, or None when no runner holds it."""
    current = store.get(LEASE_ID)
    if current is None:
        return None
    return {**current.doc, "expired": _expired(current.doc)}
