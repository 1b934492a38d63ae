"""Every code block of README.md and docs/ runs against the test node, page by page, in page order.

How a block runs depends on its fence:

- ``python``: executed by this interpreter in the page's project folder;
- ``bash``: executed as a script (``set -e``) in the page's project folder;
- ``console``: each ``$ `` line runs in the page's project folder and must exit 0, or N when it
  ends in the comment ``# exits N``; other lines are its output (shown, not compared);
- ``toml``: a project file: it parses, and every profile it declares loads;
- ``text``: a usage synopsis or an output, not code; nothing runs.

Every command finds ``esmigrate`` on its ``PATH`` and ``ESMIGRATE_URL`` naming the test node, and
``http://127.0.0.1:9200`` in a block is the test node too. A block that cannot run here (an
Elastic Cloud deployment, an AWS domain) is preceded by the marker ``<!-- not-run: REASON -->``,
which the page shows in its source. A ``python`` block that is a fragment of a larger program
(it uses a ``cluster`` or a Document class of yours) is preceded by ``<!-- setup: FILE -->``: the
Python file FILE (under tests/docs_setup/) runs first, in the same interpreter, and gives the
fragment what it uses. What follows the line ``# -- after the block --`` in FILE runs after the
fragment, with what it defined (a revision script's ``upgrade(op)`` is run against the node
there, and what it did is checked). The exit-code table of docs/cli.md is checked against
``esmigrate.exceptions.ExitCode``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from esmigrate.cli import cli
from esmigrate.cluster import Cluster
from esmigrate.config import load_config
from esmigrate.exceptions import ExitCode

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LOCAL_URL = "http://127.0.0.1:9200"
RUN = ("python", "bash", "console", "toml")
NOT_CODE = ("text",)
SETUP = ROOT / "tests" / "docs_setup"
AFTER = "# -- after the block --\n"
FENCE = re.compile(
    r"(?:^ *<!-- (?:not-run: (?P<reason>[^>]*?)|setup: (?P<setup>[\w.-]+)) -->\n)?"
    r"^(?P<indent> *)```(?P<lang>[\w-]*)\n(?P<body>.*?)^(?P=indent)```",
    flags=re.S | re.M,
)


@dataclass(frozen=True)
class Block:
    page: str
    lang: str
    code: str
    not_run: str | None  # the reason given by the page's marker
    setup: str | None = None  # a file of tests/docs_setup/ that runs before a python block

    def __str__(self) -> str:
        return f"{self.page}: ```{self.lang} {self.code.splitlines()[0] if self.code else ''}"


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def blocks(page: Path) -> list[Block]:
    name = str(page.relative_to(ROOT))
    found = []
    for match in FENCE.finditer(page.read_text()):
        indent = len(match["indent"])
        code = re.sub(rf"^ {{0,{indent}}}", "", match["body"], flags=re.M)  # blocks in lists
        found.append(Block(name, match["lang"], code, match["reason"], match["setup"]))
    return found


def exit_code_table() -> dict[str, int]:
    text = (DOCS / "cli.md").read_text()
    return {name: int(code) for code, name in re.findall(r"^\| (\d+) \| `(\w+)` \|", text, re.M)}


def test_every_block_runs_or_says_why_not() -> None:
    assert pages()
    for page in pages():
        for block in blocks(page):
            if block.not_run is not None:
                assert block.not_run.strip(), f"{block}: the not-run marker gives no reason"
            else:
                assert block.lang in RUN + NOT_CODE, (
                    f"{block}: a ```{block.lang} block neither runs nor is marked not-run"
                )
            if block.setup is not None:
                assert block.lang == "python", f"{block}: a setup file runs before python only"
                assert (SETUP / block.setup).is_file(), (
                    f"{block}: no tests/docs_setup/{block.setup}"
                )
            if block.lang == "console" and block.not_run is None:
                assert any(line.startswith("$ ") for line in block.code.splitlines()), block


def test_the_exit_code_table_is_exit_code() -> None:
    assert exit_code_table() == {code.name: code.value for code in ExitCode}


def test_the_cli_reference_names_every_command() -> None:
    table = (DOCS / "cli.md").read_text()
    table = table[table.index("## The commands") :]
    listed = set(re.findall(r"^\| `([\w-]+)", table, re.M))
    assert listed == set(cli.commands), "docs/cli.md, The commands: add or remove a row"


def test_the_toml_blocks_load(tmp_path: Path) -> None:
    for i, block in enumerate(b for p in pages() for b in blocks(p) if b.lang == "toml"):
        if block.not_run is not None:
            continue
        data = tomllib.loads(block.code)
        folder = tmp_path / str(i)
        folder.mkdir()
        name = "pyproject.toml" if "tool" in data else "esmigrate.toml"
        (folder / name).write_text(block.code)
        table = data.get("tool", data)["esmigrate"]
        for profile in [None, *table.get("env", {})]:
            load_config(cwd=folder, env={}, profile=profile)


def run_block(block: Block, cwd: Path, url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESMIGRATE_")}
    env.update(
        ESMIGRATE_URL=url,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(cwd),
    )
    code = block.code.replace(LOCAL_URL, url)
    if block.lang == "python":
        if block.setup is not None:
            before, _, after = (SETUP / block.setup).read_text().partition(AFTER)
            code = f"{before}\n{code}\n{after}"
        scripts = [([sys.executable, "-c", code], 0)]
    elif block.lang == "bash":
        scripts = [(["bash", "-ec", code], 0)]
    else:
        scripts = [
            (["bash", "-ec", line[2:]], int(status[1]) if status else 0)
            for line in code.splitlines()
            if line.startswith("$ ")
            for status in [re.search(r"# exits (\d+)$", line)]
        ]
    for args, expected in scripts:
        result = subprocess.run(
            args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == expected, (
            f"{block}\n{args[-1]}\n{result.stdout}\n{result.stderr}"
        )


def runnable_pages() -> list[Path]:
    return [p for p in pages() if any(b.not_run is None and b.lang in RUN[:3] for b in blocks(p))]


def indices(cluster: Cluster) -> set[str]:
    rows = cluster.request(
        "GET", "/_cat/indices", params={"format": "json", "expand_wildcards": "all"}
    )
    return {row["index"] for row in rows}


@pytest.mark.integration
@pytest.mark.parametrize("page", runnable_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_page_runs(page: Path, cluster_url: str, cluster: Cluster, tmp_path: Path) -> None:
    before = indices(cluster)
    try:
        for block in blocks(page):
            if block.not_run is None and block.lang in RUN[:3]:
                run_block(block, tmp_path, cluster_url)
    finally:
        for index in indices(cluster) - before:
            cluster.request("DELETE", f"/{index}")
