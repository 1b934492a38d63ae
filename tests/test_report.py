"""The migration report: what ``op.migrate`` records (bounded) and the page ``esmigrate report``
writes, checked in a real headless browser (Debian's ``chromium``, which scripts/setup.sh
installs) after a real migration with a live writer."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from esmigrate.cluster import Cluster
from esmigrate.progress import ProgressEvent, Timeline
from esmigrate.report import render
from esmigrate.state import HistoryStore, rebuild_records
from tests.conftest import run_cli
from tests.migrate_support import PAINLESS, TARGET_MAPPING, create_source, live_writer
from tests.migration_project import make_project, write_script

#: Installed by scripts/setup.sh (Debian's package): missing, the browser test fails, not skips.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_timeline_stays_bounded_however_long_the_copy() -> None:
    clock = Clock()
    timeline = Timeline(max_points=300, max_phases=50, clock=clock)
    timeline(ProgressEvent("preflight"))
    for i in range(1, 200_001):
        clock.now = i * 0.05
        timeline(ProgressEvent("copy", done=i * 10, total=2_000_000))
    for number in range(1, 101):
        clock.now += 1
        timeline(ProgressEvent("catchup", done=number, round=number))
    data = timeline.to_dict()
    assert len(data["points"]) <= 301
    assert len(data["phases"]) == 50
    assert data["dropped_phases"] == 100 - 48
    assert data["copied"] == 2_000_000 + sum(range(1, 101))
    # The samples span the run evenly: first at the start, last at the end, in time order.
    times = [t for t, _ in data["points"]]
    assert times == sorted(times)
    assert times[0] == 0.0
    assert times[-1] == clock.now
    assert data["points"][-1][1] == data["copied"]
    assert data["phases"][1] == {
        "phase": "copy",
        "round": 0,
        "start": 0.05,
        "end": 10_000.0 + 1,
        "done": 2_000_000,
    }
    json.dumps(data)  # stored in the history as it is


def test_the_page_escapes_what_it_shows() -> None:
    record = {
        "revision": "r1",
        "message": "<script>alert(1)</script>",
        "log": [
            {
                "op": "migrate",
                "summary": "migrate <b>x</b>",
                "report": {
                    "timeline": {"phases": [], "points": [], "elapsed_s": 0, "copied": 0},
                    "dead_letters": {"count": 1, "index": "dl", "first": [{"reason": "<img>"}]},
                },
            }
        ],
    }
    page = render([record])
    assert "<script>" not in page
    assert "<img>" not in page
    assert "&lt;script&gt;" in page


def png_facts(data: bytes) -> tuple[int, int, int]:
    """Width, height and the number of distinct byte values of the decoded image data."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat = b""
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        if kind == b"IDAT":
            idat += data[at + 8 : at + 8 + length]
        at += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert Path(CHROMIUM).exists(), "chromium is missing: run `bash scripts/setup.sh`"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "HOME": str(cwd)},
    )


def rendered(page: Path, tmp_path: Path) -> str:
    """The DOM of ``page`` as the browser built it, once a screenshot shows it drew a page of
    text, charts and colours, with its three charts and both lines."""
    shot = chromium("--window-size=900,1400", "--screenshot=shot.png", page.as_uri(), cwd=tmp_path)
    png = (tmp_path / "shot.png").read_bytes()
    width, height, shades = png_facts(png)
    assert (width, height) == (900, 1400), shot.stderr
    assert len(png) > 20_000
    assert shades > 50  # text, charts and colours, not a blank page
    dom = chromium("--dump-dom", page.as_uri(), cwd=tmp_path)
    assert dom.returncode == 0, dom.stderr
    html = dom.stdout
    for chart in ("phases", "copied", "rate"):
        assert f'data-chart="{chart}"' in html
    assert html.count("<polyline") == 2
    return html


@pytest.mark.integration
def test_report_of_a_live_migration_renders_in_a_browser(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    alias, _source, initial = create_source(cluster, prefix, 1000)
    history = f"{prefix}-hist"
    config = make_project(tmp_path / "proj", url=cluster_url, history_index=history)
    write_script(
        config,
        "a1",
        None,
        f"op.migrate({alias!r}, {TARGET_MAPPING!r}, script={PAINLESS!r}, "
        f"dead_letter_index={prefix + '-dl'!r})",
    )
    writer = live_writer(cluster_url, alias, len(initial), rate=60)
    try:
        writer.wait_for(20)
        # deploy = pre-flight, upgrade, clean-up: its --report is upgrade's.
        deployed = run_cli("deploy", "--report", "run.html", cwd=config.root, timeout=300)
    finally:
        writer.stop()
    assert deployed.returncode == 0, deployed.stderr
    assert "report: run.html" in deployed.stdout

    record = HistoryStore(cluster, history).revisions()["a1"].doc
    (entry,) = [e for e in record["log"] if e["op"] == "migrate"]
    recorded = entry["report"]
    figures = recorded["figures"]
    # The figures are the migrator's own (the writer kept writing after the swap).
    assert figures["final_count"] == entry["count"]
    assert 900 < figures["final_count"] < 1100
    assert figures["blocked_seconds"] > 0
    assert recorded["rollback_point"]["name"] == f"before-a1-{alias}"
    assert recorded["validation"] == {"sample_size": 200, "differences": [], "found": 0}
    assert recorded["dead_letters"]["count"] == 0
    phases = [p["phase"] for p in recorded["timeline"]["phases"]]
    for phase in ("preflight", "copy", "catchup", "blocked", "validate", "cutover", "done"):
        assert phase in phases
    assert phases.index("blocked") < phases.index("cutover")

    shown = run_cli("--json", "report", "a1", "-o", "page.html", cwd=config.root)
    assert shown.returncode == 0, shown.stderr
    (numbers,) = json.loads(shown.stdout)["migrations"]
    assert numbers["documents"] == figures["final_count"]
    assert numbers["blocked_seconds"] == figures["blocked_seconds"]
    page = config.root / "page.html"
    assert (config.root / "run.html").read_text() == page.read_text()
    assert "http://" not in page.read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")

    html = rendered(page, tmp_path)
    assert f'data-figure="documents">{figures["final_count"]:,}<' in html
    assert f'data-figure="write-block">{figures["blocked_seconds"]:.3f}<' in html
    assert f'data-figure="rollback-point">before-a1-{alias}<' in html
    assert 'data-figure="status">done<' in html


@pytest.mark.integration
def test_report_of_a_live_rebuild_renders_in_a_browser(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    alias, _source, initial = create_source(cluster, prefix, 1000)
    history = f"{prefix}-hist"
    config = make_project(tmp_path / "proj", url=cluster_url, history_index=history)
    (config.root / "shop.py").write_text(
        "from esmigrate.transform import Rename, RuleSet\n"
        f"MAPPING = {TARGET_MAPPING!r}\n"
        "rules = RuleSet(Rename('body', 'content'))\n"
    )
    writer = live_writer(cluster_url, alias, len(initial), rate=60)
    try:
        writer.wait_for(20)
        rebuilt = run_cli("rebuild", alias, "--to", "shop:MAPPING", "--rules", "shop:rules",
                          "--report", "run.html", cwd=config.root, timeout=300)  # fmt: skip
    finally:
        writer.stop()
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "Report: run.html" in rebuilt.stdout

    (record,) = [r.doc for r in rebuild_records(HistoryStore(cluster, history), alias)]
    recorded = record["report"]
    figures = recorded["figures"]
    # The figures are the migrator's own, those of the run's result.
    assert figures["final_count"] == record["result"]["count"]
    assert figures["blocked_seconds"] == record["result"]["blocked_seconds"] > 0
    assert recorded["rollback_point"]["name"] == record["rollback_point"]
    assert recorded["validation"] == {"sample_size": 200, "differences": [], "found": 0}
    phases = [p["phase"] for p in recorded["timeline"]["phases"]]
    for phase in ("preflight", "copy", "catchup", "blocked", "validate", "cutover", "done"):
        assert phase in phases
    assert recorded["timeline"]["copied"] >= len(initial)
    # The history's listing leaves the report's record to the page.
    listed = json.loads(run_cli("--json", "history", cwd=config.root).stdout)
    assert [("report" in row, row["state"]) for row in listed] == [(False, "applied")]

    # `esmigrate report ID` writes the same page again, from the record.
    shown = run_cli("--json", "report", record["id"], "-o", "page.html", cwd=config.root)
    assert shown.returncode == 0, shown.stderr
    (numbers,) = json.loads(shown.stdout)["migrations"]
    assert numbers["revision"] == record["id"]
    assert numbers["documents"] == figures["final_count"]
    page = config.root / "page.html"
    assert (config.root / "run.html").read_text() == page.read_text()

    html = rendered(page, tmp_path)
    assert f"Rebuild <code>{record['id']}</code>" in html
    assert f'data-figure="documents">{figures["final_count"]:,}<' in html
    assert f'data-figure="write-block">{figures["blocked_seconds"]:.3f}<' in html
    assert f'data-figure="rollback-point">{record["rollback_point"]}<' in html
    assert 'data-figure="status">done<' in html


@pytest.mark.integration
def test_report_errors_name_the_problem(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    history = f"{prefix}-hist"
    config = make_project(tmp_path / "proj", url=cluster_url, history_index=history)
    write_script(config, "c1", None, f"op.create_index({prefix + '-plain'!r})")
    upgraded = run_cli("upgrade", "--report", "none.html", cwd=config.root)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "No report: no op.migrate ran in this upgrade: nothing to report." in upgraded.stdout

    unknown = run_cli("report", "zz9", cwd=config.root)
    assert unknown.returncode == 1
    assert (
        f"The history index {history} has no revision or rebuild 'zz9' (recorded: c1)"
        in unknown.stderr
    )
    assert "esmigrate history" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    as_json = run_cli("--json", "report", "zz9", cwd=config.root)
    assert as_json.returncode == 1
    error = json.loads(as_json.stdout)["error"]
    assert error["type"] == "NoReport"
    assert "esmigrate history" in error["hint"]

    nothing = run_cli("report", "c1", cwd=config.root)
    assert nothing.returncode == 1
    assert "Revision c1 recorded no migration timeline" in nothing.stderr
    assert not list(config.root.glob("*.html"))


@pytest.mark.integration
def test_report_shows_dead_letters_and_a_failed_validation(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    alias, _source, _ = create_source(cluster, prefix, 200, shards=1)
    config = make_project(tmp_path / "proj", url=cluster_url, history_index=f"{prefix}-hist")
    header = """
        import itertools

        from tests.migrate_support import transform

        counter = itertools.count()


        def refuse_some(doc):
            if doc["n"] % 40 == 0 or doc["title"] in ("post 3", "post 5"):
                raise ValueError("no such post")
            return transform(doc)


        def stamp(doc):
            return {**doc, "stamp": next(counter)}  # another value when validation re-runs it
    """
    mapping = TARGET_MAPPING
    write_script(
        config,
        "d1",
        None,
        f"op.migrate({alias!r}, {mapping!r}, transform=refuse_some, max_failures=50, "
        f"dead_letter_index={prefix + '-dl'!r})",
        header=header,
    )
    stamped = {"properties": {**mapping["properties"], "stamp": {"type": "long"}}}
    write_script(
        config, "d2", "d1", f"op.migrate({alias!r}, {stamped!r}, transform=stamp)", header=header
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}

    failed = run_cli("upgrade", "--report", "failed.html", cwd=config.root, env=env, timeout=300)
    assert failed.returncode == 1, failed.stderr
    assert "validation gate" in failed.stderr
    assert "Report of the failed revision: failed.html" in failed.stderr
    page = (config.root / "failed.html").read_text()
    assert "Revision <code>d2</code>" in page
    assert 'data-figure="status">failed<' in page
    assert "a sample of" not in page  # the failure records the differences, not a sample size
    record = HistoryStore(cluster, f"{prefix}-hist").revisions()["d2"].doc
    validation = record["log"][0]["report"]["validation"]
    assert validation["found"] > 0
    assert 0 < len(validation["differences"]) <= 20
    assert f'data-figure="validation-differences">{validation["found"]:,}<' in page
    assert "stamp" in page  # the differing field, in the table of differences

    shown = run_cli("--json", "report", "d1", "-o", "d1.html", cwd=config.root, env=env)
    assert shown.returncode == 0, shown.stderr
    (numbers,) = json.loads(shown.stdout)["migrations"]
    dead = cluster.count(prefix + "-dl")
    assert numbers["dead_letters"] == dead > 2
    d1 = (config.root / "d1.html").read_text()
    assert f'data-figure="dead-letters">{dead:,}<' in d1
    assert "no such post" in d1
    assert f"<code>{prefix}-dl</code>" in d1
