from __future__ import annotations

import pytest

from esmigrate.cluster import Cluster
from esmigrate.preflight import (
    _ratio,
    check_blocks,
    check_disk,
    check_health,
    check_snapshot_repository,
    run_checks,
    store_bytes,
)
from tests.conftest import run_cli

from .test_engine_capabilities import make_index


def test_watermark_ratios() -> None:
    assert _ratio("90%") == 0.9
    assert _ratio("0.85") == 0.85
    assert _ratio("500mb") is None


@pytest.mark.integration
def test_checks_on_the_node(cluster: Cluster, prefix: str) -> None:
    make_index(cluster, f"{prefix}-a", n=50)
    assert check_health(cluster).status in ("ok", "warn")
    assert store_bytes(cluster, [f"{prefix}-a"]) > 0
    assert check_disk(cluster).status in ("ok", "fail")
    # A copy larger than any disk cannot fit (unless the node disables disk thresholds).
    huge = check_disk(cluster, copy_bytes=2**60)
    assert huge.status == "fail" or "disabled" in huge.detail

    assert check_blocks(cluster, [f"{prefix}-*"]).status == "ok"
    cluster.request("PUT", f"/{prefix}-a/_settings", body={"index.blocks.write": True})
    blocked = check_blocks(cluster, [f"{prefix}-*"])
    assert blocked.status == "warn"
    assert f"{prefix}-a" in blocked.detail

    report = run_checks(cluster, copy_sources=[f"{prefix}-a"], snapshot_repository=f"{prefix}-nope")
    assert not report.ok
    assert [c.name for c in report.failures] == ["snapshot repository"]


@pytest.mark.integration
def test_a_snapshot_repository_must_be_writable(cluster: Cluster, prefix: str) -> None:
    """A repository registered read-only passes the engine's ``_verify`` (which then writes
    nothing): the check refuses it, since no snapshot rollback point could be written."""
    writable, readonly = f"{prefix}-repo", f"{prefix}-repo-ro"
    location = {"type": "fs", "settings": {"location": writable}}
    cluster.request("PUT", f"/_snapshot/{writable}", body=location)
    ro = {"type": "fs", "settings": {"location": writable, "readonly": True}}
    cluster.request("PUT", f"/_snapshot/{readonly}", body=ro)
    try:
        assert check_snapshot_repository(cluster, writable).status == "ok"
        refused = check_snapshot_repository(cluster, readonly)
        assert refused.status == "fail"
        assert "registered read-only" in refused.detail
        assert f"PUT _snapshot/{readonly}" in (refused.hint or "")
    finally:
        for name in (readonly, writable):
            cluster.request("DELETE", f"/_snapshot/{name}")


@pytest.mark.integration
def test_preflight_command(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: object
) -> None:
    import json
    import pathlib

    project = pathlib.Path(str(tmp_path))
    (project / "migrations").mkdir()
    (project / "esmigrate.toml").write_text(
        f'[esmigrate]\nhistory_index = "{prefix}-hist"\n[esmigrate.connection]\nurl = "{cluster_url}"\n'
    )
    (project / "migrations" / "a1_copy.py").write_text(
        "revision = 'a1'\ndown_revision = None\nmessage = 'copy'\n\n"
        "def upgrade(op):\n"
        f"    op.reindex({prefix + '-src'!r}, {prefix + '-dst'!r})\n"
    )
    make_index(cluster, f"{prefix}-src", n=20)
    result = run_cli("--json", "preflight", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    names = {c["name"]: c for c in report["checks"]}
    assert "a1" in names["pending"]["detail"]
    assert names["history"]["status"] == "ok"
    # The disk check sized the copy of the reindex source.
    assert "after copying" in names["disk"]["detail"]


@pytest.mark.integration
def test_preflight_verifies_the_project_s_snapshot_repository(
    cluster_url: str, prefix: str, tmp_path: object
) -> None:
    """The repository snapshot rollback points go to (``snapshot_repository`` in the project)
    is checked before anything runs, not found unusable at a cut-over after the whole copy."""
    import json
    import pathlib

    project = pathlib.Path(str(tmp_path))
    (project / "migrations").mkdir()
    (project / "esmigrate.toml").write_text(
        f'[esmigrate]\nhistory_index = "{prefix}-hist"\nrollback_point_kind = "snapshot"\n'
        f'snapshot_repository = "{prefix}-unregistered"\n'
        f'[esmigrate.connection]\nurl = "{cluster_url}"\n'
    )
    result = run_cli("--json", "preflight", cwd=project)
    assert result.returncode == 3, result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["snapshot repository"]["status"] == "fail"
    assert f"{prefix}-unregistered" in checks["snapshot repository"]["detail"]
