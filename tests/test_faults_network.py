"""Network faults between esmigrate and the node: a proxy on loopback (tests/faultproxy.py)
answers 429 and 503 in bursts, resets connections in the middle of a bulk, loses the answer to a
request the server applied (a bulk, the ``_aliases`` swap, a checkpoint write, the start of a
``_reindex`` task, the write block) and holds answers past the client's timeout.

A live writer keeps writing straight to the node (not through the proxy) for the whole run. The
migration is run again after each failed run, as an operator would, until it is done; then the
index must hold exactly what the writer's acknowledged operations say, the alias must point at
it and no write block may be left. Each error a failed run raised must say what happened: an
esmigrate error naming the request, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from esmigrate.cluster import Cluster, connect
from esmigrate.config import ConnectionSettings
from esmigrate.migrate import ProgressEvent
from tests.fault_runs import assert_clean, fault_run, full_only, outcome, run_until_done
from tests.faultproxy import FaultProxy, Kind
from tests.migrate_support import create_source, live_writer, migration

pytestmark = [pytest.mark.integration, pytest.mark.faults]


@dataclass(frozen=True)
class Fault:
    kind: Kind
    method: str
    path: str
    times: int = 1
    skip: int = 0
    status: int = 429
    delay: float = 0.0
    #: Armed when the migration first reports this phase (None: from the start).
    phase: str | None = None


@dataclass(frozen=True)
class Case:
    name: str
    copy: str  # "painless" (copy mode reindex) or "python"
    faults: tuple[Fault, ...]
    #: Words one of the failed runs' errors must contain (what happened, in the user's terms).
    says: tuple[str, ...] = ()
    fast: bool = False
    timeout: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)


CHECKPOINT = r"/_doc/checkpoint:"
CASES = [
    Case(
        "429-503-bursts",
        "python",
        (
            Fault("status", "POST", r"^/_bulk$", times=6, skip=1, status=429),
            Fault("status", "POST", r"/_bulk$", times=3, skip=2, status=503),
            Fault("status", "POST", r"/_search$", times=2, skip=5, status=503, phase="catchup"),
            Fault("status", "POST", r"/_mget$", times=2, status=429, phase="catchup"),
        ),
        fast=True,
    ),
    Case(
        "reset-mid-bulk",
        "python",
        (Fault("reset", "POST", r"^/_bulk$", times=2, skip=2),),
        says=("lost",),
        fast=True,
    ),
    Case(
        "lost-answer-bulk",
        "python",
        (Fault("lost", "POST", r"^/_bulk$", times=2, skip=3),),
        says=("lost",),
    ),
    Case(
        "lost-answer-aliases-swap",
        "painless",
        (Fault("lost", "POST", r"^/_aliases$"),),
        fast=True,
    ),
    Case(
        "lost-answer-checkpoint-write",
        "python",
        (Fault("lost", "PUT", CHECKPOINT, times=1, skip=4),),
        fast=True,
    ),
    Case(
        "lost-answer-reindex-start",
        "painless",
        (Fault("lost", "POST", r"^/_reindex$"),),
        says=("lost",),
    ),
    Case(
        "lost-answer-write-block",
        "painless",
        (Fault("lost", "PUT", r"/_block/write$"),),
        says=("lost",),
    ),
    Case(
        "slow-answers",
        "python",
        (
            Fault("slow", "POST", r"^/_bulk$", skip=2, delay=4.0),
            Fault("slow", "PUT", CHECKPOINT, skip=6, delay=4.0),
            Fault("slow", "POST", r"^/_aliases$", delay=4.0),
        ),
        says=("in time",),
        timeout=2.0,
    ),
]


@pytest.fixture
def node_port(cluster_url: str) -> int:
    parts = urlsplit(cluster_url)
    if parts.scheme != "http" or parts.port is None:
        pytest.skip("the fault proxy speaks plain HTTP to a node on loopback")
    return parts.port


@pytest.fixture
def proxy(node_port: int) -> Iterator[FaultProxy]:
    with FaultProxy(node_port) as running:
        yield running


def _params(cases: list[Case]) -> list[Any]:
    return [
        pytest.param(case, id=case.name, marks=() if case.fast else full_only) for case in cases
    ]


@pytest.mark.parametrize("case", _params(CASES))
def test_network_faults(
    cluster: Cluster, cluster_url: str, prefix: str, proxy: FaultProxy, case: Case
) -> None:
    alias, source, initial = create_source(cluster, prefix, 3000)
    cfg: dict[str, Any] = {
        "alias": alias,
        "path": case.copy,
        "state_index": f"{prefix}-hist",
        "dead_letter_index": f"{prefix}-dl",
        "page_size": 300,
        "lease_ttl": 6.0,
        **case.extra,
    }
    armed: set[Fault] = set()

    def arm(phase: str | None) -> None:
        for fault in case.faults:
            if fault.phase == phase and fault not in armed:
                armed.add(fault)
                proxy.add(
                    fault.kind,
                    fault.method,
                    fault.path,
                    times=fault.times,
                    skip=fault.skip,
                    status=fault.status,
                    delay=fault.delay,
                )

    def on_progress(event: ProgressEvent) -> None:
        arm(event.phase)

    arm(None)
    settings = ConnectionSettings(urls=(proxy.url,), request_timeout=case.timeout)
    writer = live_writer(cluster_url, alias, len(initial))
    clusters: list[Cluster] = []

    def make() -> Any:
        clusters.append(connect(settings))
        return migration(clusters[-1], cfg, on_progress)

    with fault_run("network", case.name) as recorded:
        try:
            writer.wait_for(50)
            result, errors = run_until_done(make)
            writer.wait_for(50, index=result.target)
        finally:
            writer.stop()
            for made in clusters:
                made.close()
            recorded.set(faults=sum(proxy.injected.values()))
        ops, summary = writer.operations(), writer.report()
        found = outcome(cluster, alias, source, result.target, initial, ops)
        messages = [str(e) for e in errors]
        recorded.measured(
            found,
            summary.blocked_longest_s,
            faults=sum(proxy.injected.values()),
            runs=len(errors) + 1,
            detail={"injected": dict(proxy.injected), "errors": len(errors)},
        )
        print(
            f"\n[{case.name}] injected {dict(proxy.injected)}; runs {len(errors) + 1}; {messages}"
        )
        assert sum(proxy.injected.values()) == sum(f.times for f in case.faults), proxy.injected
        assert_clean(found)
        for word in case.says:
            assert any(word in m for m in messages), (word, messages)
        for message in messages:
            # What failed is named: the request, or the migration step and its reason.
            assert " /" in message or "migration" in message.lower(), message
