"""The code blocks of the "Connecting to a cluster" page (docs/guide/connecting.md) run (those
that need an Elastic Cloud deployment or an AWS domain excepted): project files load, Python runs
against the test node, and the page's pytest fixture serves a suite (test_docs.py runs the
page's commands, as it runs every page's).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from esmigrate.cluster import Cluster
from esmigrate.config import load_config

PAGE = Path(__file__).resolve().parent.parent / "docs" / "guide" / "connecting.md"
LOCAL_URL = "http://127.0.0.1:9200"


def blocks(language: str) -> list[str]:
    section = PAGE.read_text()
    return [
        re.sub(r"^   ", "", block, flags=re.M)  # blocks inside a numbered list are indented
        for block in re.findall(rf"^ *```{language}\n(.*?)^ *```", section, flags=re.S | re.M)
    ]


def test_every_project_file_of_the_section_loads(tmp_path: Path) -> None:
    tomls = blocks("toml")
    assert len(tomls) == 3
    for i, block in enumerate(tomls):
        folder = tmp_path / str(i)
        folder.mkdir()
        (folder / "esmigrate.toml").write_text(block)
        profiles = re.findall(r"^\[esmigrate\.env\.(\w+)", block, flags=re.M)
        assert profiles
        for profile in profiles:
            config = load_config(cwd=folder, env={}, profile=profile)
            assert config.connection.urls[0].startswith("https://")


def run(args: list[str], cwd: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESMIGRATE_")}
    return subprocess.run(
        args,
        cwd=cwd,
        env={**env, "ESMIGRATE_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.integration
def test_the_python_blocks_run_against_the_node(
    cluster_url: str, cluster: Cluster, tmp_path: Path
) -> None:
    pythons = blocks("python")
    assert len(pythons) == 3
    script, reuse, fixture = (block.replace(LOCAL_URL, cluster_url) for block in pythons)
    try:
        for code in (script, reuse):
            result = run([sys.executable, "-c", code], tmp_path, cluster_url)
            assert result.returncode == 0, result.stderr
        assert "True" in result.stdout  # the application's client is still open
    finally:
        if cluster.exists("posts"):
            cluster.request("DELETE", "/posts")
    (tmp_path / "conftest.py").write_text(fixture)
    (tmp_path / "test_uses_it.py").write_text(
        "def test_it(esmigrate_cluster):\n"
        "    assert esmigrate_cluster.settings.client is not None\n"
        "    assert esmigrate_cluster.health()['status'] in ('green', 'yellow')\n"
    )
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], tmp_path, "")
    assert result.returncode == 0, result.stdout[-2000:]
