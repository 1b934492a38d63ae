"""``esmigrate bench`` on the real node: what its output holds (speed itself is never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from esmigrate.bench import APPROACHES, pyplot
from esmigrate.cluster import Cluster
from esmigrate.exceptions import MissingClient
from tests.conftest import run_cli


@pytest.mark.integration
def test_bench_reports_every_approach_at_every_size_and_draws_a_chart(
    cluster: Cluster, cluster_url: str, tmp_path: Path
) -> None:
    chart, table = tmp_path / "bench.png", tmp_path / "bench.md"
    done = run_cli(
        "--json",
        "bench",
        "--url",
        cluster_url,
        "--docs",
        "40",
        "--docs",
        "90",
        "--sample",
        "2",
        "--shape",
        "product",
        "--chart",
        str(chart),
        "--markdown",
        str(table),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["sizes"] == [40, 90]
    assert report["shape"] == "product"
    assert report["engine"] == str(cluster.engine)
    rows = report["rows"]
    assert [(r["size"], r["approach"]) for r in rows] == [
        (size, name) for size in (40, 90) for name in APPROACHES
    ]
    for row in rows:
        assert row["docs"] == (2 if row["approach"] == "guide" else row["size"])
        assert row["docs_per_s"] > 0
        assert row["mb_per_s"] > 0
        assert 0 < row["peak_rss_mb"] < 1000
        assert row["ratio"] > 0
        if row["approach"].startswith("esmigrate"):
            # A whole migration with no writes: every document copied once, a write block.
            assert row["copied"] == row["size"]
            assert {"copy", "catchup", "blocked"} <= set(row["phases"])
            assert row["blocked_seconds"] > 0
            # Where the block went, step by step (the cut-over's own breakdown).
            assert list(row["blocked_breakdown"]) == [
                "block",
                "final_round",
                "positions",
                "reconcile",
                "validate",
            ]
        else:
            assert row["phases"] == {}
            assert row["blocked_seconds"] is None
            assert row["blocked_breakdown"] == {}
    assert {r["ratio"] for r in rows if r["approach"] == "reindex_painless"} == {1.0}
    assert chart.read_bytes().startswith(b"\x89PNG")
    labels = [
        line.split(" | ")[0] for line in table.read_text().splitlines() if line.startswith("| ")
    ]
    assert labels == ["| approach"] + [
        "| " + APPROACHES[r["approach"]][0].replace("_", "\\_") for r in rows
    ]
    left = cluster.request(
        "GET",
        "/_cat/indices/esmigrate-bench-*",
        params={"format": "json", "expand_wildcards": "all"},
    )
    assert left == []


@pytest.mark.integration
def test_bench_with_a_live_writer_reports_what_became_of_its_writes(
    cluster: Cluster, cluster_url: str, tmp_path: Path
) -> None:
    table = tmp_path / "bench.md"
    only = ("reindex_painless", "esmigrate_painless", "esmigrate_python")
    done = run_cli(
        "--json",
        "bench",
        "--url",
        cluster_url,
        "--docs",
        "300",
        *(arg for name in only for arg in ("--only", name)),
        "--writers",
        "40",
        "--markdown",
        str(table),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["writers"] == 40
    rows = {r["approach"]: r for r in report["rows"]}
    assert set(rows) == set(only)
    for name, row in rows.items():
        writes = row["writes"]
        assert writes["rate"] == 40
        assert writes["operations"] > 0
        if name.startswith("esmigrate"):
            # The zero-downtime paths keep every acknowledged write.
            assert (writes["lost"], writes["resurrected"], writes["reverted"]) == (0, 0, 0)
            assert writes["blocked_s"] >= 0
            assert row["copied"] >= row["size"]
    header = next(line for line in table.read_text().splitlines() if line.startswith("| approach"))
    assert header.endswith("| live writes | writes refused (s) |")
    left = cluster.request(
        "GET",
        "/_cat/indices/esmigrate-bench-*",
        params={"format": "json", "expand_wildcards": "all"},
    )
    assert left == []


def test_a_chart_without_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # an import of it fails
    with pytest.raises(MissingClient) as caught:
        pyplot()
    assert caught.value.extra == "esmigrate[bench]"
    assert "pip install 'esmigrate[bench]'" in str(caught.value)


def test_bench_refuses_an_unknown_approach_before_touching_the_cluster() -> None:
    done = run_cli("--json", "bench", "--url", "http://127.0.0.1:1", "--only", "fastest")
    assert done.returncode != 0
    assert "fastest" in json.loads(done.stdout)["error"]["message"]


@pytest.mark.integration
def test_the_position_layouts_benchmark_counts_every_position_in_both_layouts(
    cluster_url: str,
) -> None:
    script = Path(__file__).parent.parent / "benchmarks" / "position_layouts.py"
    done = subprocess.run(
        [sys.executable, str(script), "--url", cluster_url, "--docs", "2500", "--page", "100"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    rows = {
        line[:14].strip(): line.split()[-1]
        for line in done.stdout.splitlines()
        if line.startswith(("one doc each", "nested pages"))
    }
    assert rows == {"one doc each": "2,500", "nested pages": "2,500"}
