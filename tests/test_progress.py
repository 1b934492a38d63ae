"""Progress of long work goes through the one channel: events with docs/s and an ETA, drawn as
bars on a terminal and as log lines otherwise, for the migrator and every server task."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from esmigrate.cluster import Cluster
from esmigrate.progress import LogDisplay, ProgressEvent, RichDisplay
from tests.conftest import env_without_esmigrate, run_cli
from tests.migration_project import make_project, write_script


def test_bars_show_what_the_event_says_rate_and_eta() -> None:
    stream = io.StringIO()
    bars = RichDisplay(Console(file=stream, force_terminal=True, width=160))
    bars(ProgressEvent("reindex", done=50, total=200, docs_per_s=1234.0, eta_s=65.0,
                       migration="reindex posts -> posts-v2"))  # fmt: skip
    bars.close()
    drawn = stream.getvalue()
    assert "reindex posts -> posts-v2 · reindex" in drawn
    assert "1,234 docs/s" in drawn
    assert "ETA 0:01:05" in drawn


def test_log_lines_report_a_finished_phase_once() -> None:
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("esmigrate.test.progress")
    logger.addHandler(Collect())
    logger.setLevel(logging.INFO)
    lines = LogDisplay(logger, interval=3600)
    for _ in range(3):  # a task polled while it finishes repeats its last numbers
        lines(ProgressEvent("update_by_query", done=10, total=10, docs_per_s=5.0, eta_s=0.0))
    assert records == ["update_by_query · 10/10 docs (100.0%) · 5 docs/s · ETA 0s"]


@pytest.mark.integration
def test_server_tasks_of_a_revision_report_rate_and_eta(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    source, dest = f"{prefix}-src", f"{prefix}-dst"
    cluster.request("PUT", f"/{source}", body={"settings": {"number_of_replicas": 0}})
    lines = []
    for i in range(3000):
        lines += [orjson.dumps({"index": {"_index": source, "_id": str(i)}}), b'{"n": 1}']
    cluster.bulk(b"\n".join(lines) + b"\n")
    cluster.refresh(source)
    config = make_project(tmp_path, url=cluster_url, history_index=f"{prefix}-hist")
    write_script(
        config,
        "0001",
        None,
        f"""
        op.create_index({dest!r}, settings={{"number_of_replicas": 0}})
        op.reindex({source!r}, {dest!r})
        op.update_by_query({dest!r}, script={{"source": "ctx._source.n += 1"}})
        """,
    )
    result = run_cli("upgrade", cwd=tmp_path, env=env_without_esmigrate(), timeout=300)
    assert result.returncode == 0, result.stderr
    for task in (f"reindex {source} -> {dest}", f"update by query on {dest} with a script"):
        done = [line for line in result.stderr.splitlines() if line.startswith(f"[{task}]")]
        assert done, result.stderr
        assert "3000/3000 docs (100.0%)" in done[-1]
        assert "docs/s" in done[-1]
        assert "ETA 0s" in done[-1]
