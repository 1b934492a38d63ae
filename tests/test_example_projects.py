"""A user's project runs its own migration tests with nothing but the installed esmigrate.

The blog example project (examples/blog) keeps its tests under tests/ as a user would. It is
copied out of the repository and pytest runs on the copy in a subprocess: no conftest of ours,
no ``-p`` option, no path to this checkout. The fixtures come from the plugin the installed
package registers (its ``pytest11`` entry point), and the tests run against the session's node.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from esmigrate.cluster import Cluster
from esmigrate.testing._cluster import index_names

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.integration
def test_the_blog_project_passes_its_own_tests_with_the_installed_plugin(
    cluster: Cluster, cluster_url: str, tmp_path: Path
) -> None:
    before = index_names(cluster)
    project = tmp_path / "blog"
    shutil.copytree(
        EXAMPLES / "blog", project, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache")
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    env["ESMIGRATE_TEST_URL"] = cluster_url  # the session's node, credentials variables kept
    env.pop("PYTEST_PLUGINS", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    # The header line is the plugin's: it was loaded through the entry point.
    assert "esmigrate: the cluster of ESMIGRATE_TEST_URL" in output
    assert "5 passed" in output
    assert "PASSED tests/test_blog_migrations.py::test_round_trip_from_1_0_restores_every_post" in (
        output
    )
    # The timing helper's figures are printed, not judged.
    assert "esmigrate timings" in output
    assert "blog 0002: " in output
    # esmigrate_config deleted what each test created: the migrations' indices, the history,
    # the rollback points' old indices, the round trip's scratch copies.
    assert index_names(cluster) == before
