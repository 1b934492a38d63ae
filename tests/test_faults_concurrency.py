"""Concurrency: five ``esmigrate upgrade`` processes on one project (started together, and
staggered), two projects sharing one cluster, two migrations of different aliases at once, each
while a live writer writes through the aliases being migrated.

The lease lets one runner work at a time: the others wait for it (``--lock-timeout``) or exit
with status 5 (``BUSY``: lease held, retry later) having done nothing. Afterwards every revision
is applied once (a marker document with an automatic id would show twice otherwise), the
history says so (one run each, by one runner) and the migrated indices hold exactly what the
writers' acknowledged operations say.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from esmigrate import command
from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings
from esmigrate.exceptions import ExitCode
from esmigrate.migrate import MigrationResult
from esmigrate.migrate._layout import resolve
from esmigrate.testing import LiveWriter
from tests.conftest import env_without_esmigrate
from tests.fault_runs import FaultRun, assert_clean, fault_run, outcome, sum_outcomes
from tests.migrate_support import ROOT, create_source, live_writer, migration
from tests.migration_project import make_project, write_script
from tests.random_kills import TRACEBACK, Project

pytestmark = [pytest.mark.integration, pytest.mark.faults]

#: Long enough that a heartbeat never slips past it on a loaded 2-core machine: these tests
#: are about runners that are alive, not dead ones.
LEASE_TTL = 20.0

MARKER = """op.request("POST", "/{prefix}-markers/_doc", params={{"refresh": "true"}},
           body={{"revision": "{rev}"}})"""
HEADER = "from tests.migrate_support import PAINLESS, TARGET_MAPPING\n"


def migrating_project(root: Path, url: str, prefix: str, alias: str, history: str) -> Project:
    """Revisions r1 (a marker), r2 (``op.migrate`` of ``alias``, blue-green through painless,
    throttled so that it lasts while the others wait) and r3 (a marker)."""
    config = make_project(root, url=url, history_index=history, lease_ttl=LEASE_TTL)
    write_script(config, "r1", None, MARKER.format(prefix=prefix, rev="r1"))
    call = (
        f"op.migrate({alias!r}, TARGET_MAPPING, settings={{'number_of_replicas': 0}},\n"
        "           script={'source': PAINLESS}, requests_per_second=1500, page_size=300,\n"
        f"           dead_letter_index={alias + '-dl'!r})"
    )
    write_script(config, "r2", "r1", call, header=HEADER)
    write_script(config, "r3", "r2", MARKER.format(prefix=prefix, rev="r3"))
    env = env_without_esmigrate() | {"PYTHONPATH": str(ROOT)}
    return Project(config, root, env)


def markers(cluster: Cluster, prefix: str) -> dict[str, int]:
    cluster.refresh(f"{prefix}-markers")
    result = cluster.search(
        f"{prefix}-markers",
        {"size": 0, "aggs": {"r": {"terms": {"field": "revision.keyword", "size": 50}}}},
    )
    return {b["key"]: b["doc_count"] for b in result["aggregations"]["r"]["buckets"]}


def applied_once(project: Project) -> None:
    """The history's account: r1-r3 applied, each in one run, nothing failed or pending."""
    status = command.status(project.config)
    assert status["current"] == ["r3"], status
    assert not status["failed"], status
    assert not status["pending"], status
    records = {r["revision"]: r for r in command.history(project.config) if r.get("revision")}
    assert {rev: (r["state"], r["runs"]) for rev, r in records.items()} == {
        "r1": ("applied", 1),
        "r2": ("applied", 1),
        "r3": ("applied", 1),
    }


def measure_two(
    cluster: Cluster,
    run: FaultRun,
    sources: dict[str, tuple[str, str, dict[str, dict[str, Any]]]],
    targets: dict[str, str],
    writers: dict[str, LiveWriter],
) -> dict[str, dict[str, Any]]:
    """Each of two migrations' outcome (:func:`outcome`), recorded in ``run`` as one scenario
    run's figures: two runners at once, one beside the other."""
    found = {
        name: outcome(cluster, alias, source, targets[name], initial, writers[name].operations())
        for name, (alias, source, initial) in sources.items()
    }
    run.measured(
        sum_outcomes(found.values()),
        max(w.report().blocked_longest_s for w in writers.values()),
        faults=1,
        runs=2,
    )
    return found


def finish(processes: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    """(exit status, stdout, stderr) of each process, once all have ended."""
    outputs = [p.communicate(timeout=600) for p in processes]
    return [(p.returncode, out, err) for p, (out, err) in zip(processes, outputs, strict=True)]


@pytest.mark.parametrize("stagger", [0.0, 1.5], ids=["together", "staggered"])
def test_five_runners_on_one_project_apply_each_revision_once(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path, stagger: float
) -> None:
    cluster.request("PUT", f"/{prefix}-markers", body={"settings": {"number_of_replicas": 0}})
    alias, source, initial = create_source(cluster, prefix, 3000)
    project = migrating_project(tmp_path / "p", cluster_url, prefix, alias, f"{prefix}-hist")
    writer = live_writer(cluster_url, alias, len(initial))
    scenario = f"five-runners-{'staggered' if stagger else 'together'}"
    with fault_run("concurrency", scenario) as run:
        try:
            writer.wait_for(50)
            processes = []
            for k in range(5):
                # Three wait for the lease; two do not wait at all.
                timeout = "300" if k % 2 == 0 else "0"
                processes.append(project.start("upgrade", "--lock-timeout", timeout)())
                time.sleep(stagger)
            ended = finish(processes)
            target = resolve(cluster, alias).source
            writer.wait_for(writer.count() + 50, index=target)
        finally:
            writer.stop()
        found = outcome(cluster, alias, source, target, initial, writer.operations())
        busy = sum(code == ExitCode.BUSY for code, _, _ in ended)
        # The faults: runners started beside the first one.
        run.measured(
            found, writer.report().blocked_longest_s, faults=4, runs=5, detail={"busy": busy}
        )
        for code, _, err in ended:
            assert TRACEBACK not in err, err
            assert code in (ExitCode.OK, ExitCode.BUSY), err
            if code == ExitCode.BUSY:
                assert "holds the lease" in err, err
        waited = [ended[k] for k in (0, 2, 4)]
        assert all(code == ExitCode.OK for code, _, _ in waited), waited
        # One runner applied the three revisions; whoever came after it found nothing to do.
        assert sum("Applied 3 revision(s)" in out for _, out, _ in ended) == 1, ended
        assert markers(cluster, prefix) == {"r1": 1, "r3": 1}
        applied_once(project)
        assert_clean(found)


def test_two_projects_share_one_cluster(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    """Two projects with their own history indices (and the same revision ids) upgrade at once:
    neither waits for the other's lease, and each history holds its own project's account."""
    sources = {
        name: create_source(cluster, prefix, 2000, alias=f"{prefix}-{name}") for name in "ab"
    }
    projects = {
        name: migrating_project(
            tmp_path / name,
            cluster_url,
            f"{prefix}-{name}",
            f"{prefix}-{name}",
            f"{prefix}-h{name}",
        )
        for name in "ab"
    }
    for name in "ab":
        cluster.request(
            "PUT", f"/{prefix}-{name}-markers", body={"settings": {"number_of_replicas": 0}}
        )
    writers = {name: live_writer(cluster_url, sources[name][0], 2000, rate=150) for name in "ab"}
    with fault_run("concurrency", "two-projects-one-cluster") as run:
        try:
            for writer in writers.values():
                writer.wait_for(30)
            ended = finish(
                [projects[name].start("upgrade", "--lock-timeout", "0")() for name in "ab"]
            )
            targets = {name: resolve(cluster, sources[name][0]).source for name in "ab"}
            for name, writer in writers.items():
                writer.wait_for(writer.count() + 30, index=targets[name])
        finally:
            for writer in writers.values():
                writer.stop()
        found = measure_two(cluster, run, sources, targets, writers)
        for code, out, err in ended:
            assert code == ExitCode.OK, err
            assert "Applied 3 revision(s)" in out, out
        for name in "ab":
            assert markers(cluster, f"{prefix}-{name}") == {"r1": 1, "r3": 1}
            applied_once(projects[name])
            assert_clean(found[name])
    # Each history index names its own project's migration only.
    for name, other in (("a", "b"), ("b", "a")):
        cluster.refresh(f"{prefix}-h{name}")
        held = cluster.search(f"{prefix}-h{name}", {"size": 100})["hits"]["hits"]
        assert not any(f"{prefix}-{other}" in str(h["_source"]) for h in held)


def test_two_migrations_of_different_aliases_run_at_once(
    cluster: Cluster, cluster_url: str, prefix: str
) -> None:
    """Two blue-green migrations sharing one state index, in two threads at once: each takes
    its own migration's lease, neither waits for the other, both end exact."""
    sources = {
        name: create_source(cluster, prefix, 2000, alias=f"{prefix}-{name}") for name in "ab"
    }
    writers = {name: live_writer(cluster_url, sources[name][0], 2000, rate=150) for name in "ab"}
    results: dict[str, MigrationResult] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        cfg: dict[str, Any] = {
            "alias": sources[name][0],
            "path": "python" if name == "a" else "painless",
            "state_index": f"{prefix}-state",
            "dead_letter_index": f"{prefix}-{name}-dl",
            "page_size": 300,
            "rps": 1500,
            # Neither may wait for the other: a shared lease would time out here.
            "lease_ttl": LEASE_TTL,
        }
        own = connect(ConnectionSettings(urls=(cluster_url,)))
        try:
            migrator = migration(own, cfg)
            migrator.lock_timeout = 0
            results[name] = migrator.run()
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.close()

    with fault_run("concurrency", "two-aliases-at-once") as recorded:
        try:
            for writer in writers.values():
                writer.wait_for(30)
            threads = [threading.Thread(target=run, args=(name,)) for name in "ab"]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=600)
            assert not errors, errors
            for name, writer in writers.items():
                writer.wait_for(writer.count() + 30, index=results[name].target)
        finally:
            for writer in writers.values():
                writer.stop()
        targets = {name: results[name].target for name in "ab"}
        found = measure_two(cluster, recorded, sources, targets, writers)
        for name in "ab":
            assert_clean(found[name])
