"""What scripts rely on from the command line: exit codes that separate outcomes, JSON errors under
``--json``, unknown options rejected, environment variables shown by ``--help``, and the
script verbs (``heads``, ``branches``, ``show``, ``history --offline``) that need no cluster."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from esmigrate import command
from esmigrate.cli import main
from esmigrate.cli._app import CLI_ENVIRONMENT_VARIABLES
from esmigrate.cluster import Cluster
from esmigrate.config import ENVIRONMENT_VARIABLES
from esmigrate.exceptions import ExitCode
from esmigrate.state import HistoryStore, Identity, Lease
from tests.conftest import env_without_esmigrate, run_cli
from tests.migration_project import make_project, write_script

OFFLINE = {**env_without_esmigrate(), "ESMIGRATE_URL": "http://127.0.0.1:1"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """0001 -> 0002, 0001 -> 0003, (0002, 0003) -> 0004: a branch point and a merge."""
    config = make_project(tmp_path, history_index="unused")
    write_script(
        config,
        "0001",
        None,
        'op.create_index("things", settings={"number_of_replicas": 0})',
        'op.delete_index("things")',
        message="create things",
    )
    write_script(config, "0002", "0001", message="left")
    write_script(config, "0003", "0001", downgrade=None, message="right")
    write_script(config, "0004", ("0002", "0003"), message="join")
    return tmp_path


# -- exit codes and errors ------------------------------------------------------------------------


def test_the_exit_codes_are_distinct_and_fixed() -> None:
    """The table the README documents; a change here is a change for every script."""
    assert {c.name: int(c) for c in ExitCode} == {
        "OK": 0,
        "ERROR": 1,
        "USAGE": 2,
        "PROBLEM": 3,
        "AUTH": 4,
        "BUSY": 5,
        "WINDOW": 6,
        "INTERNAL": 70,
        "INTERRUPTED": 130,
    }


def test_a_mistyped_option_is_a_usage_error_naming_the_right_one(project: Path) -> None:
    result = run_cli("upgrade", "--dryrun", cwd=project, env=OFFLINE)
    assert result.returncode == ExitCode.USAGE
    assert "No such option '--dryrun'" in result.stderr
    assert "--dry-run" in result.stderr  # the suggestion
    assert result.stdout == ""

    as_json = run_cli("--json", "upgrade", "--dryrun", cwd=project, env=OFFLINE)
    assert as_json.returncode == ExitCode.USAGE
    error = json.loads(as_json.stdout)["error"]
    assert error["type"] == "UsageError"
    assert "--dry-run" in error["message"]
    assert error["exit_code"] == 2
    assert error["command"] == "esmigrate upgrade"
    assert "--help" in error["hint"]


def test_relative_steps_are_targets_and_double_dash_ends_options(project: Path) -> None:
    back = run_cli("--json", "plan", "--offline", "--downgrade", "-1", cwd=project, env=OFFLINE)
    assert back.returncode == 0, back.stderr
    assert [r["revision"] for r in json.loads(back.stdout)["revisions"]] == ["0004"]
    # After `--` everything is an argument: a target that looks like an option names no revision.
    odd = run_cli("--json", "plan", "--offline", "--", "--dryrun", cwd=project, env=OFFLINE)
    assert odd.returncode == ExitCode.ERROR
    assert json.loads(odd.stdout)["error"]["type"] == "TargetError"


def test_an_option_value_that_looks_like_a_step_stays_the_option_s() -> None:
    from esmigrate.cli._migrations import upgrade

    ctx = upgrade.make_context("upgrade", ["--lock-timeout", "-1", "-2"])
    assert ctx.params["lock_timeout"] == -1.0
    assert ctx.params["target"] == "-2"


def test_errors_under_json_carry_their_structured_fields(project: Path) -> None:
    result = run_cli("--json", "plan", "--offline", "nope", cwd=project, env=OFFLINE)
    assert result.returncode == ExitCode.ERROR
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "TargetError"
    assert "'nope'" in error["message"]
    assert "+1 / -1" in error["hint"]
    assert error["paths"] == []
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: Unknown revision 'nope'")


def test_an_unexpected_exception_is_an_internal_error_without_a_trace(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_args: object) -> None:
        raise ValueError("cannot happen at https://bob:pa55@host:9200")

    monkeypatch.chdir(project)
    monkeypatch.setattr(command, "heads", broken)
    monkeypatch.delenv("ESMIGRATE_DEBUG", raising=False)
    with pytest.raises(SystemExit) as ended:
        main(["--json", "heads"])
    assert ended.value.code == ExitCode.INTERNAL
    out, err = capsys.readouterr()
    error = json.loads(out)["error"]
    assert error["type"] == "InternalError"
    assert error["message"] == "ValueError: cannot happen at https://********@host:9200"
    assert "--debug" in error["hint"]
    assert "Traceback" not in err
    assert "pa55" not in out + err

    with pytest.raises(SystemExit):
        main(["--debug", "heads"])
    assert "Traceback" in capsys.readouterr().err


def test_dev_server_status_without_a_node_is_a_problem_found() -> None:
    result = run_cli("--json", "dev-server", "status", "--port", "1")
    assert result.returncode == ExitCode.PROBLEM
    assert json.loads(result.stdout)["running"] is False


# -- environment variables ----------------------------------------------------------------------

_SHOWN = re.compile(r"\[env\s+var:\s+(ESMIGRATE_\w+)\]")


def test_help_shows_every_environment_variable_of_the_config() -> None:
    """The variables come from click's own ``show_envvar``: none is missing, none is stale."""
    root = run_cli("--help").stdout
    assert set(_SHOWN.findall(root)) == {*ENVIRONMENT_VARIABLES, *CLI_ENVIRONMENT_VARIABLES}
    sub = run_cli("upgrade", "--help").stdout
    assert set(_SHOWN.findall(sub)) == set(ENVIRONMENT_VARIABLES)
    assert "[env:" not in root + sub  # no hand-written lists left


def test_a_flag_wins_over_the_environment_at_every_level(cluster_url: str, tmp_path: Path) -> None:
    env = {**env_without_esmigrate(), "ESMIGRATE_URL": "http://127.0.0.1:1"}
    for args in (["--url", cluster_url, "info"], ["info", "--url", cluster_url]):
        result = run_cli("--json", *args, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["url"] == cluster_url
    refused = run_cli("--json", "info", cwd=tmp_path, env=env)
    assert refused.returncode == ExitCode.ERROR
    assert json.loads(refused.stdout)["error"]["type"] == "ClusterUnavailable"


# -- busy, unhealthy ------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_held_lease_is_busy_with_its_holder_in_the_json(
    cluster: Cluster, cluster_url: str, prefix: str, tmp_path: Path
) -> None:
    config = make_project(tmp_path, url=cluster_url, history_index=f"{prefix}-hist")
    write_script(config, "0001", None)
    store = HistoryStore(cluster, config.history_index)
    store.ensure()
    holder = Lease(store, Identity.current(), ttl=120, command="upgrade").acquire()
    try:
        result = run_cli(
            "--json", "upgrade", "--lock-timeout", "0", cwd=tmp_path, env=env_without_esmigrate()
        )
    finally:
        holder.release()
    assert result.returncode == ExitCode.BUSY, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "LeaseHeld"
    assert error["exit_code"] == 5
    assert error["owner"] == holder.identity.owner
    assert error["expires_at"]


@pytest.mark.integration
def test_monitor_of_an_unhealthy_alias_is_a_problem_found(cluster_url: str, prefix: str) -> None:
    result = run_cli(
        "--json",
        "monitor",
        f"{prefix}-missing",
        "--url",
        cluster_url,
        "--duration",
        "30",
        "--interval",
        "0.2",
        "--consecutive",
        "1",
    )
    assert result.returncode == ExitCode.PROBLEM, result.stderr
    assert json.loads(result.stdout)["healthy"] is False


# -- script verbs (no cluster) --------------------------------------------------------------------


def test_heads_branches_show_and_offline_history(project: Path) -> None:
    def data(*args: str) -> object:
        result = run_cli("--json", *args, cwd=project, env=OFFLINE)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    heads = data("heads")
    assert [h["revision"] for h in heads["heads"]] == ["0004"]  # type: ignore[index]
    branches = data("branches")["branches"]  # type: ignore[index]
    assert [(b["revision"], b["children"]) for b in branches] == [("0001", ["0002", "0003"])]
    history = data("history", "--offline")
    assert isinstance(history, list)
    assert [h["revision"] for h in history] == ["0001", "0002", "0003", "0004"]
    assert history[3]["is_merge"] is True

    shown = data("show", "0001")
    assert shown["message"] == "create things"  # type: ignore[index]
    assert shown["path"] == "migrations/0001_x.py"  # type: ignore[index]
    assert len(shown["checksum"]) == 64  # type: ignore[index]
    assert [o["kind"] for o in shown["upgrade"]] == ["create_index"]  # type: ignore[index]
    assert [o["kind"] for o in shown["downgrade"]] == ["delete_index"]  # type: ignore[index]
    right = data("show", "0003")
    assert right["downgrade"] is None  # type: ignore[index]

    human = run_cli("history", "--offline", cwd=project, env=OFFLINE).stdout
    assert "0002, 0003 -> 0004 (head, mergepoint), join" in human
    assert "<base> -> 0001 (branchpoint), create things" in human


def test_show_of_an_ambiguous_prefix_names_the_candidates(project: Path) -> None:
    result = run_cli("--json", "show", "000", cwd=project, env=OFFLINE)
    assert result.returncode == ExitCode.ERROR
    assert "0001, 0002, 0003, 0004" in json.loads(result.stdout)["error"]["message"]
