"""``esmigrate deploy``, the production run: pre-flight checks, the migration (each blue-green cut-over records a
rollback point), health monitoring with automatic rollback, retention clean-up, and a migration
log kept in the history index.

``esmigrate deploy`` runs it; each step is one of the plain commands, so every step can also be
run (and re-run) on its own: ``preflight``, ``upgrade``, ``monitor``, ``rollback``,
``rollback-point cleanup``.

The migrated aliases are watched all at once, in one window: one thread per rollback point
(:func:`esmigrate.rollback.auto_rollback` with a shared deadline and stop event), so N aliases
take one window, not N, and an alias that turns unhealthy is noticed within ``consecutive``
samples whichever alias it is.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from esmigrate import command
from esmigrate.cluster import Cluster, connect
from esmigrate.config import Config
from esmigrate.deploy_steps import (
    UserCheck,
    deploy_points,
    enter_window,
    load_checks,
    roll_back_all,
    rolled_back_error,
)
from esmigrate.exceptions import (
    ConfigError,
    DeployRolledBack,
    EsmigrateError,
    MigrationCancelled,
    OutsideWindow,
    PreflightFailed,
)
from esmigrate.progress import ProgressCallback, Reporter
from esmigrate.rollback import (
    MonitorReport,
    RollbackPoint,
    Sample,
    alias_checks,
    auto_rollback,
    list_points,
)
from esmigrate.schedule import parse_duration, parse_window
from esmigrate.state import HistoryStore
from esmigrate.transform import Transform


@dataclass
class DeploymentLog:
    """What a deployment did, step by step; stored in the history index as ``kind: deployment``."""

    id: str = field(
        default_factory=lambda: (
            datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        )
    )
    target: str = "head"
    steps: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "running"

    def step(self, name: str, began: float, **details: Any) -> dict[str, Any]:
        entry = {"step": name, "seconds": round(time.monotonic() - began, 3), **details}
        self.steps.append(entry)
        return entry

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "deployment",
            "id": self.id,
            "target": self.target,
            "outcome": self.outcome,
            "steps": self.steps,
        }


#: A watch's body: ``(stop, deadline) -> report`` (see :func:`esmigrate.rollback.monitor`).
WatchFn = Callable[[threading.Event, float], MonitorReport]


@dataclass
class _Watch:
    """One rollback point watched in its own thread: the checks of all of its aliases (a
    rollback moves them together, so one watch per point, never two rollbacks of one point)."""

    point: str
    aliases: list[str]
    run: WatchFn
    report: MonitorReport | None = None
    #: The report of a tripped check, kept even when the rollback that follows raises.
    tripped: MonitorReport | None = None
    error: BaseException | None = None
    thread: threading.Thread | None = None
    #: Set by the watch's thread as its last act. Waiting is done on this (see ``_join``), not
    #: on ``Thread.join``/``is_alive``: a KeyboardInterrupt landing inside ``join`` can leave
    #: CPython (3.11, 3.12) reporting a running thread as ended.
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return self.thread is not None and not self.done.is_set()

    @property
    def outcome(self) -> str:
        if self.error is not None:
            return "failed"
        if self.report is None:
            return "interrupted"  # still running when a second Ctrl-C abandoned it
        if self.report.rollback is not None:
            return "rolled back"
        if self.report.stopped:
            return "stopped"
        return "healthy" if self.report.healthy else "unhealthy"

    def entries(self) -> list[dict[str, Any]]:
        """One log entry per alias: every alias's outcome is recorded."""
        report = self.report or self.tripped
        error = None
        if self.error is not None:
            message = getattr(self.error, "message", None) or str(self.error)
            error = f"{type(self.error).__name__}: {message}"
        return [
            {
                "alias": alias,
                "point": self.point,
                "outcome": self.outcome,
                "reason": error or (report.reason if report is not None else "not sampled"),
                "error": error,
                "report": None if report is None else report.to_dict(),
            }
            for alias in self.aliases
        ]


def _join(watches: Sequence[_Watch]) -> None:
    # Polled with a sleep, taking no lock: a KeyboardInterrupt can land between any two steps
    # of a wait on a lock (Event.wait takes two), and one landing there can leave the lock
    # held, so that the watch's thread blocks for ever setting its event. A sleep is cut short
    # cleanly, and ``running`` reads the event's flag without its lock.
    while any(watch.running for watch in watches):
        time.sleep(0.05)


def _watch_together(watches: Sequence[_Watch], duration: float, say: Reporter) -> None:
    """Run every watch in its own thread, all within one window of ``duration`` seconds.

    A watch that rolls its point back ends; the others go on until the window ends. A watch
    that raises sets the shared stop event (the others end before their next round, a rollback
    already running finishes) and, once all have ended, its exception is raised here (others'
    are added as notes, and every one is in the watches). Ctrl-C does the same and re-raises
    :class:`KeyboardInterrupt`; a second Ctrl-C stops waiting at once (the threads are
    daemons; a rollback cut short is completed by running ``esmigrate rollback POINT``).
    """
    stop = threading.Event()
    failed: list[_Watch] = []
    lock = threading.Lock()

    def run(watch: _Watch, deadline: float) -> None:
        try:
            watch.report = watch.run(stop, deadline)
        except BaseException as exc:  # raised again in the calling thread, below
            watch.error = exc
            with lock:
                failed.append(watch)
            stop.set()
        finally:
            watch.done.set()

    deadline = time.monotonic() + duration
    try:
        for watch in watches:
            watch.thread = threading.Thread(
                target=run, args=(watch, deadline), name=f"monitor {watch.point}", daemon=True
            )
            watch.thread.start()
        _join(watches)
    except BaseException as exc:
        stop.set()
        if isinstance(exc, KeyboardInterrupt):
            say(
                "Interrupted: stopping the health watch; a rollback already running finishes "
                "first (Ctrl-C again to stop waiting; `esmigrate rollback POINT` completes it)."
            )
        _join(watches)
        raise
    if failed:
        first = failed[0].error
        assert first is not None
        for other in failed[1:]:
            first.add_note(f"also failed, watching {other.point}: {other.error!r}")
        raise first


def _point_reverse(
    point: RollbackPoint, reverse_rules: dict[str, str], transforms: dict[str, Transform]
) -> Transform | None:
    refs = {reverse_rules[a] for a in point.aliases if a in reverse_rules}
    if len(refs) > 1:
        raise ConfigError(
            f"--reverse-rules names {len(refs)} different transforms ({', '.join(sorted(refs))}) "
            f"for the aliases of rollback point {point.name}, which are rolled back together.",
            hint="Give one of its aliases ({}) the downgrade transform.".format(
                ", ".join(point.aliases)
            ),
        )
    return transforms[refs.pop()] if refs else None


def _point_watch(
    cluster: Cluster,
    config: Config,
    point: RollbackPoint,
    reverse: Transform | None,
    *,
    duration: float,
    interval: float,
    say: Reporter,
    user_checks: Sequence[UserCheck] = (),
    max_error_rate: float = 0.0,
    max_latency_ms: float | None = None,
) -> _Watch:
    """The watch of rollback ``point``: the standard checks of each of its aliases (read now,
    so a missing point fails before the window) and the user checks that apply to them,
    rolling the point back when one trips."""
    aliases = list(point.aliases)
    checks = [
        check
        for alias in aliases
        for check in alias_checks(
            cluster,
            alias,
            point=point.name,
            state_index=config.history_index,
            qualify=True,
            max_error_rate=max_error_rate,
            max_latency_ms=max_latency_ms,
        )
    ]
    checks += [check for user in user_checks for check in user.checks_for(aliases)]

    def on_sample(sample: Sample) -> None:
        if not sample.ok:
            say(f"{sample.check}: {sample.detail}")

    def on_unhealthy(report: MonitorReport) -> None:
        watch.tripped = report
        say(f"{', '.join(aliases)}: {report.reason}; rolling back to {point.name}")

    def run(stop: threading.Event, deadline: float) -> MonitorReport:
        return auto_rollback(
            cluster,
            point.name,
            checks,
            state_index=config.history_index,
            duration=duration,
            interval=interval,
            reverse_transform=reverse,
            on_sample=on_sample,
            on_unhealthy=on_unhealthy,
            deadline=deadline,
            stop=stop,
            lease_ttl=config.lease_ttl,
        )

    watch = _Watch(point.name, aliases, run)
    return watch


def _roll_back_deploy(
    config: Config,
    points: Sequence[RollbackPoint],
    rules: dict[str, str],
    transforms: dict[str, Transform],
    log: DeploymentLog,
    say: Reporter,
    failure: EsmigrateError,
) -> None:
    """``--rollback-all-on-failure``: roll back the cut-overs this deploy made (``points``)
    and raise :class:`DeployRolledBack` saying so; with none, return (the caller re-raises)."""
    began = time.monotonic()
    entries = roll_back_all(
        config, points, lambda point: _point_reverse(point, rules, transforms), say
    )
    log.step("rollback all", began, points=entries)
    if entries:
        log.outcome = "rolled back"
        raise rolled_back_error(failure, entries, log.to_dict()) from failure


def deploy(
    config: Config,
    target: str = "head",
    *,
    monitor_seconds: float = 0.0,
    interval: float = 5.0,
    keep: int = 3,
    snapshot_repository: str | None = None,
    reverse_rules: dict[str, str] | None = None,
    windows: Sequence[str] | None = None,
    wait_for_window: bool = False,
    cleanup_after: str | None = None,
    older_than: str | None = None,
    checks: Sequence[str] = (),
    max_latency: str | float | None = None,
    max_error_rate: float = 0.0,
    rollback_all_on_failure: bool = False,
    reporter: Reporter | None = None,
    on_progress: ProgressCallback | None = None,
    report: Path | None = None,
) -> dict[str, Any]:
    """Run the production deploy to ``target``; returns the deployment log.

    0. with maintenance ``windows`` (``"Sat 02:00-04:00 Europe/Berlin"``; None: the config's
       ``[esmigrate.deploy] windows``): outside every window it raises
       :class:`OutsideWindow` naming the next opening, or with ``wait_for_window`` waits for
       it; a deploy whose estimate (``plan --estimate``) plus ``monitor_seconds`` would not fit
       in the window is refused the same way, before anything starts
       (:func:`esmigrate.deploy_steps.enter_window`);
    1. pre-flight (:func:`esmigrate.command.preflight`): a failed check raises
       :class:`PreflightFailed` before anything is written;
    2. ``upgrade``: every blue-green ``op.migrate`` records the rollback point
       ``before-<revision>-<alias>`` at its cut-over (the old index, kept). When a revision
       fails and ``rollback_all_on_failure`` is set, the cut-overs this deploy made before it
       are rolled back, newest first (writes made since carried back through
       ``reverse_rules``, or that point's rollback refused and named), the ``rollback all``
       step of the log lists each, and :class:`DeployRolledBack` is raised from the failure;
    3. with ``monitor_seconds``: every migrated alias is watched at the same time, in one
       window of ``monitor_seconds`` (its health, a search probe through it, its document
       count against the point; one thread per rollback point, the checks named
       ``<alias>/<check>``). A check failing ``consecutive`` (3) samples in a row rolls that
       alias's point back, carrying writes made since the cut-over back through
       ``reverse_rules[alias]`` (``module:attr``); the other aliases keep being watched until
       the window ends (each may be rolled back in turn). ``checks`` (``[ALIAS=]module:fn``,
       imported before anything is written) add the application's own checks to the watch of
       ALIAS's point (of every point without ALIAS); ``max_latency`` (``"500ms"``) and
       ``max_error_rate`` are the search probe's limits. Then, if any was rolled back,
       :class:`DeployRolledBack` names each one, its check and why; the others keep the new
       index. An exception in a watch (e.g. a rollback refused with
       :class:`~esmigrate.exceptions.WritesAtRisk`) stops the other watches and is raised;
       so is Ctrl-C (a rollback already running finishes first);
    4. clean-up: the scheduled clean-ups that are due are carried out; with ``cleanup_after``
       (``"24h"``; None: the config's ``[esmigrate.deploy] cleanup_after``) this deploy's
       rollback points are scheduled for clean-up that long from now (carried out by a later
       ``deploy`` or ``rollback-point cleanup``); then rollback points beyond the newest
       ``keep`` (and, with ``older_than``, only those older than it: ``"7d"``) are deleted,
       with the indices only they kept, sparing the points of schedules not due yet;
    5. the log goes to the history index (``kind: deployment``), whatever the outcome; its
       ``monitor`` step records every alias's outcome (``healthy``, ``rolled back``,
       ``stopped``, ``failed``, ``interrupted``), the reason and the report.

    ``reverse_rules`` and ``windows`` are read first: a bad one fails before anything is written.
    ``report``: the migration report of the upgrade goes there (see ``command.upgrade``); its
    ``upgrade`` step says where.
    """
    say = reporter or (lambda _line: None)
    rules = dict(reverse_rules or {})
    transforms = {ref: command.load_transform(config, ref) for ref in set(rules.values())}
    gates = [parse_window(w) for w in (config.deploy_windows if windows is None else windows)]
    delay_text = config.cleanup_after if cleanup_after is None else cleanup_after
    delay = None if delay_text is None else parse_duration(delay_text, what="--cleanup-after")
    age = None if older_than is None else parse_duration(older_than, what="--older-than")
    latency = None if max_latency is None else parse_duration(max_latency, what="--max-latency")
    latency_ms = None if latency is None else latency.total_seconds() * 1000
    user_checks = load_checks(config, checks)
    if (user_checks or latency is not None or max_error_rate) and monitor_seconds <= 0:
        raise ConfigError(
            "--check, --max-latency and --max-error-rate are health checks of the monitoring "
            "window, and no window was asked for.",
            hint="Add --monitor SECONDS (e.g. --monitor 300).",
        )
    if not 0 <= max_error_rate <= 1:
        raise ConfigError(
            f"Invalid --max-error-rate {max_error_rate}.",
            hint="Give the share of failed search probes tolerated, from 0 to 1 (e.g. 0.05).",
        )
    log = DeploymentLog(target=target)
    try:
        if gates:
            began = time.monotonic()
            try:
                window = enter_window(
                    config,
                    target,
                    gates,
                    wait=wait_for_window,
                    monitor_seconds=monitor_seconds,
                    say=say,
                )
            except OutsideWindow as refused:
                log.outcome = "refused"
                log.step("window", began, refused=refused.message, **refused.details())
                raise
            log.step("window", began, **window)
        began = time.monotonic()
        checked = command.preflight(config, target, snapshot_repository=snapshot_repository)
        log.step("preflight", began, ok=checked.ok, checks=checked.to_dict()["checks"])
        say("pre-flight: " + ", ".join(f"{c.name} {c.status}" for c in checked.checks))
        if not checked.ok:
            failed = "; ".join(f"{c.name}: {c.detail}" for c in checked.failures)
            log.outcome = "refused"
            raise PreflightFailed(
                f"Pre-flight checks failed, nothing was changed: {failed}.",
                checks=checked.to_dict()["checks"],
                hint="Fix what they name (`esmigrate preflight` lists every check), then deploy again.",
            )

        began = time.monotonic()
        before = (
            {p.name for p in deploy_points(config, set())} if rollback_all_on_failure else set()
        )
        try:
            result = command.upgrade(
                config, target, reporter=say, on_progress=on_progress, report=report
            )
        except EsmigrateError as failure:
            if not rollback_all_on_failure or isinstance(failure, MigrationCancelled):
                raise  # a Ctrl-C is resumed by the next run, not undone
            log.step("upgrade", began, failed=f"{type(failure).__name__}: {failure.message}")
            _roll_back_deploy(
                config, deploy_points(config, before), rules, transforms, log, say, failure
            )
            raise
        applied = [r["revision"] for r in result.get("revisions", [])]
        written = result.get("report")
        log.step("upgrade", began, revisions=applied, **({"report": written} if written else {}))

        with connect(config.connection) as cluster:
            prefixes = tuple(f"before-{rev.lower()}-" for rev in applied)
            points = [
                p
                for p in list_points(cluster, state_index=config.history_index)
                if p.name.startswith(prefixes)
            ]
            log.step("rollback points", time.monotonic(), points=[p.name for p in points])

            if monitor_seconds > 0 and points:
                watches = [
                    _point_watch(
                        cluster,
                        config,
                        point,
                        _point_reverse(point, rules, transforms),
                        duration=monitor_seconds,
                        interval=interval,
                        say=say,
                        user_checks=user_checks,
                        max_error_rate=max_error_rate,
                        max_latency_ms=latency_ms,
                    )
                    for point in points
                ]
                watched = {a for p in points for a in p.aliases}
                not_run = [c.spec for c in user_checks if c.alias and c.alias not in watched]
                for spec in not_run:
                    say(f"--check {spec}: not run, this deploy moved no such alias")
                aliases = [a for w in watches for a in w.aliases]
                say(f"monitoring {', '.join(aliases)} for {monitor_seconds:g}s, all at once")
                began = time.monotonic()
                try:
                    _watch_together(watches, monitor_seconds, say)
                finally:
                    log.step(
                        "monitor",
                        began,
                        window=monitor_seconds,
                        interval=interval,
                        healthy=all(w.outcome == "healthy" for w in watches),
                        checks=[c.spec for c in user_checks],
                        checks_not_run=not_run,
                        aliases=[e for w in watches for e in w.entries()],
                    )
                rolled = [w for w in watches if w.outcome == "rolled back"]
                for watch in watches:
                    say(f"{', '.join(watch.aliases)}: {watch.outcome}")
                if rolled:
                    log.outcome = "rolled back"
                    kept = [a for w in watches if w not in rolled for a in w.aliases]
                    raise DeployRolledBack(
                        "After the migration, "
                        + "; ".join(
                            f"{', '.join(w.aliases)} failed a health check and "
                            f"{'was' if len(w.aliases) == 1 else 'were'} rolled back to "
                            f"{w.point} ({w.report.reason if w.report else ''})"
                            for w in rolled
                        )
                        + (
                            f". {', '.join(kept)} stayed healthy for the whole window and "
                            "keep the new index."
                            if kept
                            else "."
                        ),
                        log=log.to_dict(),
                        hint="The rolled-back aliases point to the old index again, with the writes made "
                        "since the cut-over carried back. Fix the cause, then `esmigrate repair` and "
                        "deploy again.",
                    ) from None

        began = time.monotonic()
        scheduled = None
        if delay is not None and points:
            scheduled = command.rollback_point_cleanup_later(
                config, [p.name for p in points], delay, deployment=log.id
            )
            say(f"clean-up of {', '.join(scheduled['points'])} scheduled for {scheduled['due_at']}")
        cleaned = command.rollback_point_cleanup(config, keep=keep, older_than=age)
        log.step(
            "cleanup",
            began,
            scheduled=scheduled,
            **{k: v for k, v in cleaned.items() if k != "plan"},
        )
        log.outcome = "done"
        return log.to_dict()
    except Exception:
        if log.outcome == "running":
            log.outcome = "failed"
        raise
    except KeyboardInterrupt:
        log.outcome = "interrupted"
        raise
    finally:
        try:
            with connect(config.connection) as cluster:
                store = HistoryStore(cluster, config.history_index)
                store.ensure()
                store.create(f"deployment:{log.id}", log.to_dict())
        except EsmigrateError as exc:  # the log is a record, never a reason to hide the outcome
            say(f"warning: the deployment log could not be written: {exc.message}")
