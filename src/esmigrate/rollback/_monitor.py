"""Health monitoring after a cut-over, and automatic rollback when a check keeps failing.

Every ``interval`` seconds each check takes one real sample (a cluster health call, a search
through the alias, a count, the node's search statistics, or a callable of yours). A check that
fails ``consecutive`` samples in a row makes the monitor unhealthy: :func:`monitor` calls
``on_unhealthy`` with the report; :func:`auto_rollback` rolls back to a point (carrying writes
made since the cut-over back through the reverse transform) and returns why.

Several monitors can share one window: give them the same ``deadline`` (a ``time.monotonic()``
value) and ``stop`` event, and run each in its own thread (``esmigrate deploy`` does, one per
rollback point). Setting ``stop`` ends every one of them at its next round.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from esmigrate.cluster import Cluster
from esmigrate.exceptions import ClusterError, RollbackError
from esmigrate.progress import ProgressCallback
from esmigrate.rollback._points import get_point
from esmigrate.rollback._rollback import RollbackResult, rollback
from esmigrate.transform import Transform


@dataclass(frozen=True)
class Sample:
    """One observation of a check: healthy or not, the measured value, and why."""

    check: str
    ok: bool
    value: Any = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Check(Protocol):
    """A health check: ``name`` and ``sample(cluster) -> Sample``."""

    name: str

    def sample(self, cluster: Cluster) -> Sample: ...


@dataclass
class ClusterHealth:
    """Red (cluster, or ``index`` when given) is unhealthy; yellow too unless ``yellow_ok``."""

    index: str | None = None
    yellow_ok: bool = True
    name: str = "health"

    def sample(self, cluster: Cluster) -> Sample:
        try:
            status = str(cluster.health(self.index, timeout="5s").get("status"))
        except ClusterError as exc:
            return Sample(self.name, False, None, f"health call failed: {exc.message}")
        ok = status == "green" or (status == "yellow" and self.yellow_ok)
        return Sample(self.name, ok, status, f"{self.index or 'cluster'} is {status}")


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[k]


@dataclass
class SearchProbe:
    """Runs ``query`` (a search body) through ``alias`` at every sample; over the last
    ``window`` probes, unhealthy when the error rate exceeds ``max_error_rate`` (a probe fails
    on an error response or on failed shards) or the ``percentile`` latency exceeds
    ``max_latency_ms``."""

    alias: str
    query: Mapping[str, Any] = field(default_factory=lambda: {"query": {"match_all": {}}})
    window: int = 20
    max_error_rate: float = 0.0
    percentile: float = 99.0
    max_latency_ms: float | None = None
    name: str = "search_probe"

    def __post_init__(self) -> None:
        self._results: deque[tuple[bool, float]] = deque(maxlen=self.window)

    def sample(self, cluster: Cluster) -> Sample:
        t0 = time.perf_counter()
        error = ""
        try:
            # A search that failed on some shards raises too (Cluster.request).
            cluster.search(self.alias, dict(self.query))
        except ClusterError as exc:
            error = exc.message
        ms = (time.perf_counter() - t0) * 1000
        self._results.append((not error, ms))
        errors = sum(1 for ok, _ in self._results if not ok)
        rate = errors / len(self._results)
        latency = _percentile([m for _, m in self._results], self.percentile)
        value = {"error_rate": rate, f"p{self.percentile:g}_ms": round(latency, 1)}
        if rate > self.max_error_rate:
            return Sample(self.name, False, value, error or f"error rate {rate:.0%}")
        if self.max_latency_ms is not None and latency > self.max_latency_ms:
            return Sample(self.name, False, value, f"p{self.percentile:g} latency {latency:.0f} ms")
        return Sample(self.name, True, value, "ok")


@dataclass
class DocCountDrop:
    """Unhealthy when the count through ``alias`` falls more than ``max_drop`` (a ratio) below
    ``baseline`` (e.g. the rollback point's count: :meth:`from_point`)."""

    alias: str
    baseline: int
    max_drop: float = 0.1
    name: str = "doc_count"

    @classmethod
    def from_point(
        cls, cluster: Cluster, point: str, alias: str, *, state_index: str, max_drop: float = 0.1
    ) -> DocCountDrop:
        p = get_point(cluster, point, state_index=state_index)
        base = sum(int(p.indices[i]["count"]) for i in p.aliases.get(alias, p.indices))
        return cls(alias, base, max_drop)

    def sample(self, cluster: Cluster) -> Sample:
        try:
            count = cluster.count(self.alias)
        except ClusterError as exc:
            return Sample(self.name, False, None, f"count failed: {exc.message}")
        floor = self.baseline * (1 - self.max_drop)
        ok = count >= floor
        return Sample(
            self.name, ok, count, f"{count} documents (baseline {self.baseline}, floor {floor:.0f})"
        )


@dataclass
class SearchRejections:
    """Unhealthy when ``index``'s search failures (``_stats`` ``search.query_failed`` where the
    engine reports it) or the nodes' rejected search tasks grow by more than ``max_new``
    between two samples."""

    index: str
    max_new: int = 0
    name: str = "search_rejections"

    def __post_init__(self) -> None:
        self._last: int | None = None

    def _total(self, cluster: Cluster) -> int:
        stats = cluster.request("GET", f"/{self.index}/_stats/search")
        search = stats.get("_all", {}).get("primaries", {}).get("search", {})
        failed = int(search.get("query_failed", 0))
        nodes = cluster.request(
            "GET", "/_nodes/stats/thread_pool", params={"filter_path": "nodes.*.thread_pool.search"}
        )
        rejected = sum(
            int(n.get("thread_pool", {}).get("search", {}).get("rejected", 0))
            for n in nodes.get("nodes", {}).values()
        )
        return failed + rejected

    def sample(self, cluster: Cluster) -> Sample:
        try:
            total = self._total(cluster)
        except ClusterError as exc:
            return Sample(self.name, False, None, f"stats failed: {exc.message}")
        new = 0 if self._last is None else total - self._last
        self._last = total
        return Sample(self.name, new <= self.max_new, new, f"{new} new failed/rejected searches")


@dataclass
class CallableCheck:
    """A check of yours: ``fn(cluster)`` returns True/False (or a :class:`Sample`)."""

    fn: Callable[[Cluster], bool | Sample]
    name: str = "custom"

    def sample(self, cluster: Cluster) -> Sample:
        result = self.fn(cluster)
        if isinstance(result, Sample):
            return result
        return Sample(self.name, bool(result), result, "" if result else "returned False")


def as_check(check: Check | Callable[[Cluster], bool | Sample]) -> Check:
    if hasattr(check, "sample"):
        return check  # type: ignore[return-value]
    fn = check
    assert callable(fn)
    return CallableCheck(fn, getattr(fn, "__name__", "custom"))


def alias_checks(
    cluster: Cluster,
    alias: str,
    *,
    point: str | None = None,
    state_index: str = ".esmigrate",
    query: Mapping[str, Any] | None = None,
    max_error_rate: float = 0.0,
    max_latency_ms: float | None = None,
    max_drop: float | None = 0.1,
    yellow_ok: bool = True,
    qualify: bool = False,
) -> list[Check]:
    """The standard checks of ``alias`` after a cut-over: its health (:class:`ClusterHealth`),
    a search probe through it (:class:`SearchProbe`) and, with ``point`` and ``max_drop``, its
    document count against the point (:class:`DocCountDrop`; the point is read now, so a wrong
    name fails here). ``qualify`` names them ``<alias>/<check>`` so that the checks of several
    aliases can share one monitor."""
    checks: list[Check] = [
        ClusterHealth(alias, yellow_ok=yellow_ok),
        SearchProbe(
            alias,
            dict(query or {"query": {"match_all": {}}}),
            max_error_rate=max_error_rate,
            max_latency_ms=max_latency_ms,
        ),
    ]
    if point is not None and max_drop is not None:
        checks.append(
            DocCountDrop.from_point(
                cluster, point, alias, state_index=state_index, max_drop=max_drop
            )
        )
    if qualify:
        for check in checks:
            check.name = f"{alias}/{check.name}"
    return checks


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass
class MonitorReport:
    """How a monitoring window ended; ``failed`` holds the samples of the check that tripped.

    ``healthy`` means no check tripped; ``stopped`` that the ``stop`` event ended the watch
    before the window did (healthy until then). ``started_at``/``ended_at`` (UTC, ISO 8601)
    are when the first round began and when the watch ended."""

    healthy: bool
    samples: int
    seconds: float
    failed_check: str | None = None
    failed: list[Sample] = field(default_factory=list)
    last: dict[str, Sample] = field(default_factory=dict)
    rollback: RollbackResult | None = None
    stopped: bool = False
    started_at: str = ""
    ended_at: str = ""

    @property
    def reason(self) -> str:
        if self.healthy and self.stopped:
            return f"stopped after {self.seconds:.1f} s, healthy until then"
        if self.healthy:
            return "healthy for the whole window"
        details = "; ".join(s.detail for s in self.failed[-3:])
        return f"{self.failed_check} failed {len(self.failed)} consecutive samples: {details}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "stopped": self.stopped,
            "samples": self.samples,
            "seconds": round(self.seconds, 3),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "failed_check": self.failed_check,
            "reason": self.reason,
            "failed": [s.to_dict() for s in self.failed],
            "last": {k: s.to_dict() for k, s in self.last.items()},
            "rollback": None if self.rollback is None else self.rollback.to_dict(),
        }


def monitor(
    cluster: Cluster,
    checks: Sequence[Check | Callable[[Cluster], bool | Sample]],
    *,
    duration: float,
    interval: float = 5.0,
    consecutive: int = 3,
    on_unhealthy: Callable[[MonitorReport], None] | None = None,
    on_sample: Callable[[Sample], None] | None = None,
    deadline: float | None = None,
    stop: threading.Event | None = None,
) -> MonitorReport:
    """Sample every check each ``interval`` seconds for ``duration`` seconds.

    When one check fails ``consecutive`` samples in a row, stop, call ``on_unhealthy`` with the
    report and return it (``healthy=False``); otherwise return a healthy report at the end.

    ``deadline`` (a ``time.monotonic()`` value) ends the window earlier when it comes first:
    monitors given the same one share a window. Setting ``stop`` (from another thread) ends the
    watch before the next round, with a healthy report marked ``stopped``. A check that raises
    (rather than returning a failed sample) ends the watch with that exception.
    """
    if consecutive < 1 or interval < 0 or duration < 0:
        raise RollbackError(
            "monitor needs consecutive >= 1 and a non-negative interval and duration.",
            hint="e.g. duration=600, interval=5, consecutive=3.",
        )
    items = [as_check(c) for c in checks]
    if not items:
        raise RollbackError("monitor needs at least one check.", hint="Pass checks=[...].")
    names = [c.name for c in items]
    if len(set(names)) != len(names):
        raise RollbackError(
            f"monitor needs distinct check names, got {names}.",
            hint="Give each check its own name (e.g. alias_checks(..., qualify=True)).",
        )
    # Sleeping on an event lets a stop end the wait at once.
    waiter = stop if stop is not None else threading.Event()
    streaks: dict[str, list[Sample]] = {c.name: [] for c in items}
    last: dict[str, Sample] = {}
    t0 = time.monotonic()
    end = t0 + duration if deadline is None else min(t0 + duration, deadline)
    started_at = _now()
    rounds = 0

    def report(healthy: bool, **kwargs: Any) -> MonitorReport:
        return MonitorReport(
            healthy,
            rounds,
            time.monotonic() - t0,
            last=dict(last),
            started_at=started_at,
            ended_at=_now(),
            **kwargs,
        )

    while True:
        if waiter.is_set():
            return report(True, stopped=True)
        rounds += 1
        for check in items:
            sample = check.sample(cluster)
            last[check.name] = sample
            if on_sample is not None:
                on_sample(sample)
            streak = streaks[check.name]
            if sample.ok:
                streak.clear()
                continue
            streak.append(sample)
            if len(streak) >= consecutive:
                unhealthy = report(False, failed_check=check.name, failed=list(streak))
                if on_unhealthy is not None:
                    on_unhealthy(unhealthy)
                return unhealthy
        if time.monotonic() + interval > end:
            return report(True)
        waiter.wait(interval)


def auto_rollback(
    cluster: Cluster,
    point: str,
    checks: Sequence[Check | Callable[[Cluster], bool | Sample]],
    *,
    state_index: str,
    duration: float,
    interval: float = 5.0,
    consecutive: int = 3,
    reverse_transform: Transform | None = None,
    reverse_script: Mapping[str, Any] | str | None = None,
    discard_writes: bool = False,
    on_sample: Callable[[Sample], None] | None = None,
    on_progress: ProgressCallback | None = None,
    on_unhealthy: Callable[[MonitorReport], None] | None = None,
    deadline: float | None = None,
    stop: threading.Event | None = None,
    lease_ttl: float = 30.0,
) -> MonitorReport:
    """Monitor (see :func:`monitor`, also for ``deadline`` and ``stop``); on a failure, call
    ``on_unhealthy`` with the report, roll back to ``point`` and return the report with
    ``rollback`` set. The point is looked up first, so a wrong name fails before the watch.
    A rollback that would drop writes without a reverse transform raises
    :class:`~esmigrate.exceptions.WritesAtRisk` (nothing is changed). A rollback that has begun
    is not interrupted by ``stop``: it ends with the aliases back on the point. ``lease_ttl``:
    see :func:`~esmigrate.rollback.rollback`."""
    get_point(cluster, point, state_index=state_index)
    report = monitor(
        cluster,
        checks,
        duration=duration,
        interval=interval,
        consecutive=consecutive,
        on_unhealthy=on_unhealthy,
        on_sample=on_sample,
        deadline=deadline,
        stop=stop,
    )
    if not report.healthy:
        report.rollback = rollback(
            cluster,
            point,
            state_index=state_index,
            reverse_transform=reverse_transform,
            reverse_script=reverse_script,
            discard_writes=discard_writes,
            on_progress=on_progress,
            lease_ttl=lease_ttl,
        )
    return report
