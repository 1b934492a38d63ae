"""Randomised kills: a process that migrates is SIGKILLed at a moment drawn from a seeded random
generator (not at a chosen phase), started again and killed again, then run until it is done.

:func:`kill_until_done` is the loop; the scenarios (tests/test_faults_kill.py) say what to start
and what the exact final state is. The same seed gives the same kill delays, so a failure is
reproduced by its test id (``test_random_kills[python-3]``); where the kill landed still depends
on the machine's speed, which is the point: over many seeds, kills land everywhere.

``python -m tests.random_kills incremental CONFIG`` runs one incremental migration (the library's
:class:`~esmigrate.migrate.Incremental`: no CLI verb runs it) for the loop to kill.

On the embedded node every migrating process is given a password (:data:`SECRET`, which the
node ignores): the loop counts where it shows in their output (:attr:`KillRun.secrets_found`).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esmigrate.cluster import Cluster
from esmigrate.config import Config
from esmigrate.state import Checkpoint, HistoryStore, read_lease
from esmigrate.testing._cluster import TEST_URL_ENV
from tests.conftest import env_without_esmigrate, start_cli
from tests.migrate_support import ROOT, SOURCE_MAPPING
from tests.migration_project import make_project, write_script

#: A run that failed on its own must fail as a user error: one clear message, no traceback.
TRACEBACK = "Traceback (most recent call last)"

#: The password of this test session's migrating processes: no output may show it.
SECRET = f"kill-{secrets.token_hex(12)}"


def credentials_env() -> dict[str, str]:
    """The environment giving a process :data:`SECRET` as its password, on the embedded node
    (which ignores it); nothing on a cluster given by URL, whose own credentials apply."""
    if os.environ.get(TEST_URL_ENV):
        return {}
    return {"ESMIGRATE_USERNAME": "esm-kill", "ESMIGRATE_PASSWORD": SECRET}


def secrets_in(text: str | None) -> int:
    return (text or "").count(SECRET)


@dataclass
class KillRun:
    """What the loop did: each kill (seconds after the start, the phase the checkpoint named
    right after it), the processes started and the messages of the runs that failed on their
    own (e.g. a lease not yet lapsed)."""

    kills: list[dict[str, Any]] = field(default_factory=list)
    runs: int = 0
    #: How long each process that was not killed ran, in seconds.
    ran_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    #: Processes whose stdout and stderr were read, and how often :data:`SECRET` showed there.
    outputs: int = 0
    secrets_found: int = 0

    def read(self, out: str | None, err: str | None) -> None:
        self.outputs += 1
        self.secrets_found += secrets_in(out) + secrets_in(err)


def kill_until_done(
    start: Callable[[], subprocess.Popen[str]],
    rnd: random.Random,
    *,
    kills: int,
    window: tuple[float, float],
    phase: MigrationWatch,
    between: Callable[[], None] | None = None,
    keep_killing: bool = False,
    attempts: int = 6,
    timeout: float = 600,
) -> KillRun:
    """Start, kill ``rnd.uniform(*window)`` seconds after the start or after the migration's
    work began (``phase`` no longer ``"start"``), ``kills`` times; then run until a process exits
    0. A process that ends before its kill moment ends the killing, unless
    ``keep_killing`` (a migration that is run again and again, like an incremental one).
    ``between`` runs after each kill (the application writes on while nobody migrates)."""
    run = KillRun()
    while len(run.kills) < kills:
        proc = start()
        run.runs += 1
        delay = round(rnd.uniform(*window), 2)
        # Three kills in four count from the moment this process holds the migration's lease
        # and the migration has a checkpoint (its work has begun, however slow the start on a
        # loaded machine, and a rerun's too); the others from the start of the process, where
        # the runner's own history writes are.
        counted_from = "start" if rnd.random() < 0.25 else "work"
        if counted_from == "work":
            _wait_for_work(proc, phase)
        try:
            out, err = proc.communicate(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            run.read(*proc.communicate())
            run.kills.append({"after_s": delay, "from": counted_from, "phase": phase()})
            if between is not None:
                between()
            continue
        run.read(out, err)
        _judge(proc, err, run)
        if proc.returncode == 0 and not keep_killing:
            return run
        assert len(run.failures) < attempts, run.failures
    for _ in range(attempts):
        proc = start()
        run.runs += 1
        began = time.monotonic()
        out, err = proc.communicate(timeout=timeout)
        run.ran_s.append(round(time.monotonic() - began, 1))
        run.read(out, err)
        _judge(proc, err, run)
        if proc.returncode == 0:
            return run
    raise AssertionError(f"not done after {attempts} runs: {run.failures}")


@dataclass(frozen=True)
class MigrationWatch:
    """Where one data migration stands, read from its state index."""

    cluster: Cluster
    state_index: str
    migration: str

    def __call__(self) -> str:
        """The phase the migration's checkpoint names now: ``start`` before there is one; the
        strategy for one that has no phases (an incremental run is one pass)."""
        if not self.cluster.exists(self.state_index):
            return "start"
        data = Checkpoint(self.cluster, self.state_index, self.migration).load()
        return str(data.get("phase") or data.get("strategy") or "start")

    def held_by(self, pid: int) -> bool:
        """Whether process ``pid`` holds the migration's lease."""
        if not self.cluster.exists(self.state_index):
            return False
        lease = read_lease(HistoryStore(self.cluster, self.state_index), f"lease:{self.migration}")
        return lease is not None and lease.get("pid") == pid


def _wait_for_work(proc: subprocess.Popen[str], phase: MigrationWatch) -> None:
    """Until ``proc`` holds the migration's lease and its checkpoint names a phase (or the
    process has ended). A rerun finds the phase of the run before it: the lease says when its
    own work began."""
    while proc.poll() is None and (not phase.held_by(proc.pid) or phase() == "start"):
        time.sleep(0.1)


def _judge(proc: subprocess.Popen[str], err: str, run: KillRun) -> None:
    assert TRACEBACK not in err, err
    if proc.returncode != 0:
        run.failures.append(err.strip()[-600:])


# -- the project that migrates ---------------------------------------------------------------

#: Short leases: a killed run's lease lapses within seconds, so resumes do not wait long.
LEASE_TTL = 3.0
DOCS = 2000
REVISION = "k1"


@dataclass
class Project:
    config: Config
    root: Path
    env: dict[str, str]

    def start(self, *args: str) -> Callable[[], subprocess.Popen[str]]:
        return lambda: start_cli(*args, cwd=self.root, env=self.env)


def project(tmp_path: Path, url: str, prefix: str, *, lease_ttl: float = LEASE_TTL) -> Project:
    config = make_project(tmp_path, url=url, history_index=f"{prefix}-hist", lease_ttl=lease_ttl)
    # Revision scripts import the test model (tests.migrate_support) from this checkout.
    env = env_without_esmigrate() | {"PYTHONPATH": str(ROOT)} | credentials_env()
    return Project(config, tmp_path, env)


def migrate_revision(
    config: Config, alias: str, prefix: str, how: str, *, lease_ttl: float = LEASE_TTL
) -> None:
    """Revision k1: ``op.migrate`` of ``alias`` blue-green (``painless``, ``python``, or
    ``python-pausing``: :func:`~tests.migrate_support.pausing_transform`) or in place, throttled so that a run lasts long enough for kills to land in each phase."""
    if how == "in-place":
        call = (
            f"op.migrate({alias!r}, IN_PLACE, backfill='ctx._source.n2 = ctx._source.n * 2',\n"
            f"           requests_per_second=500, lease_ttl={lease_ttl})"
        )
    else:
        python = {"python": "transform", "python-pausing": "pausing_transform"}
        how_ = "script={'source': PAINLESS}" if how == "painless" else f"transform={python[how]}"
        call = (
            f"op.migrate({alias!r}, TARGET_MAPPING, settings={{'number_of_replicas': 0}},\n"
            f"           {how_}, requests_per_second=2000, page_size=300,\n"
            f"           dead_letter_index={prefix + '-dl'!r}, lease_ttl={lease_ttl})"
        )
    header = (
        "from tests.migrate_support import PAINLESS, TARGET_MAPPING, transform\n"
        "from tests.migrate_support import pausing_transform\n"
        f"IN_PLACE = {IN_PLACE!r}\n"
    )
    write_script(config, REVISION, None, call, header=header)


#: The in-place target: the source mapping plus n2 (long: the writer may add it first) and a
#: keyword sub-field of the title.
IN_PLACE: dict[str, Any] = {
    "properties": {
        **SOURCE_MAPPING["properties"],
        "n2": {"type": "long"},
        "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
    }
}


# -- the incremental migration, as a process ----------------------------------------------------


def incremental_main(config_path: str) -> None:
    from esmigrate.cluster import connect
    from esmigrate.config import ConnectionSettings, Secret
    from esmigrate.exceptions import EsmigrateError
    from esmigrate.migrate import Incremental
    from tests.migrate_support import PAINLESS, transform

    cfg = json.loads(Path(config_path).read_text())
    password = os.environ.get("ESMIGRATE_PASSWORD")
    cluster = connect(
        ConnectionSettings(
            urls=(cfg["url"],),
            username=os.environ.get("ESMIGRATE_USERNAME"),
            password=Secret(password) if password else None,
        )
    )
    try:
        Incremental(
            cluster,
            cfg["source"],
            cfg["target"],
            script=PAINLESS if cfg["path"] == "painless" else None,
            transform=transform if cfg["path"] == "python" else None,
            migration_id=cfg["migration_id"],
            state_index=cfg["state_index"],
            dead_letter_index=cfg["dead_letter_index"],
            requests_per_second=cfg["rps"],
            page_size=cfg["page_size"],
            lease_ttl=cfg["lease_ttl"],
        ).run()
    except EsmigrateError as exc:
        # As the CLI reports it: the message, no traceback.
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    if sys.argv[1] == "incremental":
        incremental_main(sys.argv[2])
