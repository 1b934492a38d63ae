"""The lease on the history index, on the real node."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.config import ConnectionSettings
from esmigrate.exceptions import (
    LeaseHeld,
    LeaseLost,
    MigrationConflict,
    MigrationLocked,
)
from esmigrate.state import HistoryStore, Identity, Lease, read_lease
from esmigrate.state._history import LEASE_ID, now, timestamp
from tests.migration_project import make_project, write_script

pytestmark = pytest.mark.integration


@pytest.fixture
def store(cluster: Cluster, prefix: str) -> HistoryStore:
    store = HistoryStore(cluster, f"{prefix}-hist")
    store.ensure()
    return store


def test_history_index_is_not_dynamic(store: HistoryStore, cluster: Cluster) -> None:
    mapping = cluster.request("GET", f"/{store.index}/_mapping")[store.index]["mappings"]
    assert mapping["dynamic"] == "false"
    assert mapping["properties"]["kind"] == {"type": "keyword"}
    # Another kind of document with fields of any shape never conflicts.
    store.create("checkpoint:x", {"kind": "checkpoint", "shards": {"0": 12}, "started_at": 5})
    store.ensure()  # idempotent on an existing index


def test_one_holder_at_a_time_and_a_clear_refusal(store: HistoryStore) -> None:
    first = Lease(store, Identity.current(), ttl=30).acquire(timeout=0)
    try:
        second_identity = Identity.current()
        with pytest.raises(LeaseHeld) as err:
            Lease(store, second_identity, ttl=30).acquire(timeout=0.3)
        assert err.value.owner == first.identity.owner
        assert err.value.expires_at
        assert first.identity.owner in err.value.message
        assert str(err.value.expires_at) in err.value.message
        assert err.value.hint
        assert "--lock-timeout" in err.value.hint
        first.check()
    finally:
        first.release()
    assert read_lease(store) is None
    Lease(store, Identity.current(), ttl=30).acquire(timeout=0).release()


def test_heartbeat_keeps_the_lease_past_its_ttl(store: HistoryStore) -> None:
    # A TTL with room for a busy 2-core machine: renewals every ttl/3 seconds must never slip
    # by a whole TTL; the sleep still spans two TTLs, so only renewals can keep the lease.
    lease = Lease(store, Identity.current(), ttl=8).acquire(timeout=0)
    try:
        first_expiry = read_lease(store)
        assert first_expiry is not None
        time.sleep(17)
        lease.check()
        current = read_lease(store)
        assert current is not None
        assert current["owner"] == lease.identity.owner
        assert current["expires_at"] > first_expiry["expires_at"]
        assert not current["expired"]
        with pytest.raises(LeaseHeld):
            Lease(store, Identity.current(), ttl=8).acquire(timeout=0)
    finally:
        lease.release()


def test_an_expired_lease_is_taken_over(store: HistoryStore) -> None:
    dead = {
        "kind": "lease",
        "owner": "deadhost:1:abc",
        "host": "deadhost",
        "pid": 1,
        "user": "x",
        "expires_at": timestamp(now() - timedelta(seconds=1)),
    }
    store.create(LEASE_ID, dead)
    lease = Lease(store, Identity.current(), ttl=30).acquire(timeout=0)
    try:
        assert lease.taken_over is not None
        assert lease.taken_over["owner"] == "deadhost:1:abc"
        current = read_lease(store)
        assert current is not None
        assert current["owner"] == lease.identity.owner
    finally:
        lease.release()


def test_a_runner_that_lost_its_lease_stops(store: HistoryStore) -> None:
    lease = Lease(store, Identity.current(), ttl=30).acquire(timeout=0)
    try:
        current = store.get(LEASE_ID)
        assert current is not None
        # Someone took it over (as after an expiry during a long pause of this process).
        store.replace(LEASE_ID, {**current.doc, "owner": "thief"}, current.version)
        assert lease.renew() is False
        with pytest.raises(LeaseLost, match="took it over"):
            lease.check()
    finally:
        lease.release()
    lease_doc = read_lease(store)
    assert lease_doc is not None
    assert lease_doc["owner"] == "thief"  # not ours to delete


def test_upgrade_waits_for_the_lease_then_names_the_holder(
    tmp_path: Path, cluster_settings: ConnectionSettings, prefix: str, store: HistoryStore
) -> None:
    config = make_project(tmp_path / "p", history_index=store.index, connection=cluster_settings)
    write_script(config, "r1", None, f'op.create_index("{prefix}-x")')
    holder = Lease(store, Identity.current(), ttl=30, command="upgrade").acquire(timeout=0)
    try:
        status = command.status(config)
        assert status["lease"]["owner"] == holder.identity.owner
        with pytest.raises(LeaseHeld) as err:
            command.upgrade(config, lock_timeout=0.5)
        assert holder.identity.owner in err.value.message
    finally:
        holder.release()
    assert command.status(config)["current"] == []
    result = command.upgrade(replace(config, lease_ttl=5), lock_timeout=0)
    assert [r["revision"] for r in result["revisions"]] == ["r1"]


# -- the per-migration lease: the same class, its own document and errors -------------------------


def test_a_migration_lease_names_its_holder_and_stops_when_taken_over(
    cluster: Cluster, store: HistoryStore
) -> None:
    first = Lease.for_migration(cluster, store.index, "m1", ttl=30).acquire(0)
    try:
        with pytest.raises(MigrationLocked) as err:
            Lease.for_migration(cluster, store.index, "m1", ttl=30).acquire(0.3)
        assert err.value.owner == first.identity.owner
        assert err.value.pid == first.identity.pid
        assert isinstance(err.value.expires_at, float)
        assert "being run by another process" in err.value.message
        assert first.identity.owner in err.value.message
        # Another migration, and the runner's lease, are other documents: both free.
        Lease.for_migration(cluster, store.index, "m2", ttl=30).acquire(0).release()
        Lease(store, Identity.current(), ttl=30).acquire(0).release()
        assert first.held
        current = store.get("lease:m1")
        assert current is not None
        store.replace("lease:m1", {**current.doc, "owner": "thief"}, current.version)
        assert first.renew() is False
        assert not first.held
        with pytest.raises(MigrationConflict, match="took it over"):
            first.check()
    finally:
        first.release()
    lease_doc = read_lease(store, "lease:m1")
    assert lease_doc is not None
    assert lease_doc["owner"] == "thief"  # not ours to delete


@pytest.mark.parametrize("expired", [True, False])
def test_a_migration_lease_of_the_older_format_is_honoured(
    cluster: Cluster, store: HistoryStore, expired: bool
) -> None:
    # Earlier releases stored the expiry as seconds since the epoch: a live one is waited for,
    # an expired one taken over.
    old = {"kind": "lease", "owner": "old:1:abc", "host": "old", "pid": 1}
    old["expires_at"] = time.time() + (-1 if expired else 60)
    store.create("lease:m1", old)
    lease = Lease.for_migration(cluster, store.index, "m1", ttl=30)
    if not expired:
        with pytest.raises(MigrationLocked) as err:
            lease.acquire(0)
        assert err.value.owner == "old:1:abc"
        assert err.value.expires_at == pytest.approx(old["expires_at"], abs=0.001)
        return
    with lease.acquire(0):
        assert lease.taken_over is not None
        assert lease.taken_over["owner"] == "old:1:abc"
        current = read_lease(store, "lease:m1")
        assert current is not None
        assert current["owner"] == lease.identity.owner
    assert read_lease(store, "lease:m1") is None


def test_in_place_and_incremental_runs_take_the_migration_lease(
    cluster: Cluster, store: HistoryStore, prefix: str
) -> None:
    from esmigrate.migrate import Incremental, InPlace

    source, target = f"{prefix}-src", f"{prefix}-dst"
    for name in (source, target):
        cluster.request("PUT", f"/{name}", body={"settings": {"number_of_replicas": 0}})
    runs: dict[str, InPlace | Incremental] = {
        "in-place": InPlace(
            cluster,
            source,
            {"properties": {"x": {"type": "keyword"}}},
            migration_id="in-place",
            state_index=store.index,
            lock_timeout=0.3,
        ),
        "incremental": Incremental(
            cluster,
            source,
            target,
            migration_id="incremental",
            state_index=store.index,
            lock_timeout=0.3,
        ),
    }
    for migration_id, engine in runs.items():
        holder = Lease.for_migration(cluster, store.index, migration_id, ttl=30).acquire(0)
        try:
            with pytest.raises(MigrationLocked):
                engine.run()
        finally:
            holder.release()
        engine.run()  # free again
