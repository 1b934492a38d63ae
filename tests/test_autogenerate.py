"""`esmigrate revision --autogenerate`: from Document classes to a script that makes `check` pass."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from esmigrate.cluster import Cluster
from tests.conftest import env_without_esmigrate, run_cli

pytestmark = pytest.mark.integration


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
    init = run_cli("init", ".", "--url", cluster_url, cwd=tmp_path, env=env_without_esmigrate())
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
    first = run_cli(
        "revision",
        "--autogenerate",
        "-m",
        "create posts",
        cwd=tmp_path,
        env=env_without_esmigrate(),
    )
    assert first.returncode == 0, first.stderr
    script = next((tmp_path / "migrations").glob("*create_posts.py")).read_text()
    assert "op.create_index(Post)" in script
    assert run_cli("upgrade", cwd=tmp_path, env=env_without_esmigrate()).returncode == 0
    assert run_cli("check", cwd=tmp_path, env=env_without_esmigrate()).returncode == 0
    assert cluster.exists(index)

    # 2. Additive change: a new field and a new sub-field; put_mapping plus a backfill.
    write_docs(
        tmp_path,
        index,
        "title = opensearchpy.Text(fields={'raw': opensearchpy.Keyword()})\ntags = opensearchpy.Keyword()\n",
    )
    assert run_cli("check", cwd=tmp_path, env=env_without_esmigrate()).returncode == 3  # drift
    second = run_cli(
        "revision", "--autogenerate", "-m", "add tags", cwd=tmp_path, env=env_without_esmigrate()
    )
    assert second.returncode == 0, second.stderr
    script = next((tmp_path / "migrations").glob("*add_tags.py")).read_text()
    assert f"op.put_mapping({index!r}" in script
    assert "op.update_by_query(" in script  # title.raw must be filled for existing documents
    upgraded = run_cli("upgrade", cwd=tmp_path, env=env_without_esmigrate())
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    checked = run_cli("check", cwd=tmp_path, env=env_without_esmigrate())
    assert checked.returncode == 0, checked.stdout

    # 3. Nothing differs any more: the generated upgrade() is empty.
    third = run_cli(
        "--json",
        "revision",
        "--autogenerate",
        "-m",
        "nothing",
        cwd=tmp_path,
        env=env_without_esmigrate(),
    )
    assert third.returncode == 0, third.stderr
    assert '"operations": []' in third.stdout
