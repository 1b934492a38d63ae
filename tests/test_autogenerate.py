"""`esmigrate revision --autogenerate`: from Document classes to a script that makes `check` pass."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from esmigrate.cluster import Cluster

pytestmark = pytest.mark.integration


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESMIGRATE_")}
    return subprocess.run(
        [sys.executable, "-m", "esmigrate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env=env,
    )


def write_docs(project: Path, index: str, fields: str) -> None:
    (project / "mydocs.py").write_text(
        textwrap.dedent(
            """
            from typing import Any, ClassVar

            import opensearchpy

            class Post(opensearchpy.Document):
            {fields}

                class Index:
                    name = "{index}"
                    settings: ClassVar[dict[str, Any]] = {{"number_of_replicas": 0}}
            """
        ).format(index=index, fields=textwrap.indent(textwrap.dedent(fields), "    "))
    )


def test_autogenerate_creates_then_evolves(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    index = f"{prefix}-posts"
    init = run_cli(tmp_path, "init", ".", "--url", cluster_url)
    assert init.returncode == 0, init.stderr
    config = tmp_path / "esmigrate.toml"
    text = config.read_text().replace(
        'history_index = ".esmigrate"', f'history_index = "{prefix}-hist"'
    )
    config.write_text(
        text.replace("[esmigrate]\n", '[esmigrate]\nschema_modules = ["mydocs"]\n', 1)
    )
    write_docs(tmp_path, index, "title = opensearchpy.Text()\n")

    # 1. The index does not exist: the script creates it from the Document class.
    first = run_cli(tmp_path, "revision", "--autogenerate", "-m", "create posts")
    assert first.returncode == 0, first.stderr
    script = next((tmp_path / "migrations").glob("*create_posts.py")).read_text()
    assert "op.create_index(Post)" in script
    assert run_cli(tmp_path, "upgrade").returncode == 0
    assert run_cli(tmp_path, "check").returncode == 0
    assert cluster.exists(index)

    # 2. Additive change: a new field and a new sub-field; put_mapping plus a backfill.
    write_docs(
        tmp_path,
        index,
        "title = opensearchpy.Text(fields={'raw': opensearchpy.Keyword()})\ntags = opensearchpy.Keyword()\n",
    )
    assert run_cli(tmp_path, "check").returncode == 1
    second = run_cli(tmp_path, "revision", "--autogenerate", "-m", "add tags")
    assert second.returncode == 0, second.stderr
    script = next((tmp_path / "migrations").glob("*add_tags.py")).read_text()
    assert f"op.put_mapping({index!r}" in script
    assert "op.update_by_query(" in script  # title.raw must be filled for existing documents
    upgraded = run_cli(tmp_path, "upgrade")
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    checked = run_cli(tmp_path, "check")
    assert checked.returncode == 0, checked.stdout

    # 3. Nothing differs any more: the generated upgrade() is empty.
    third = run_cli(tmp_path, "--json", "revision", "--autogenerate", "-m", "nothing")
    assert third.returncode == 0, third.stderr
    assert '"operations": []' in third.stdout
