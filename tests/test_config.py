from __future__ import annotations

from pathlib import Path

import pytest

from esmigrate.config import ConnectionSettings, Secret, load_config, redact_url
from esmigrate.exceptions import ConfigError


def test_defaults_without_any_file(tmp_path: Path) -> None:
    config = load_config(cwd=tmp_path, env={})
    assert config.connection.urls == ("http://127.0.0.1:9200",)
    assert config.history_index == ".esmigrate"
    assert config.source is None


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    (tmp_path / "esmigrate.toml").write_text(
        '[esmigrate]\nhistory_index = ".hist"\n[esmigrate.connection]\nurl = "http://file:9200"\ntimeout = 5\n'.replace(
            "timeout", "request_timeout"
        )
    )
    from_file = load_config(cwd=tmp_path, env={})
    assert from_file.connection.urls == ("http://file:9200",)
    assert from_file.connection.request_timeout == 5.0
    assert from_file.history_index == ".hist"
    from_env = load_config(cwd=tmp_path, env={"ESMIGRATE_URL": "http://env:9200,http://env2:9200"})
    assert from_env.connection.urls == ("http://env:9200", "http://env2:9200")
    from_flag = load_config(
        cwd=tmp_path, env={"ESMIGRATE_URL": "http://env:9200"}, url="http://flag:1"
    )
    assert from_flag.connection.urls == ("http://flag:1",)
    # A flag that was not given (None) does not hide the environment.
    assert load_config(
        cwd=tmp_path, env={"ESMIGRATE_URL": "http://env:9200"}, url=None
    ).connection.urls == ("http://env:9200",)


def test_pyproject_table_found_from_a_subfolder(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.esmigrate]\nmigrations_dir = "es/migrations"\n')
    sub = tmp_path / "src" / "app"
    sub.mkdir(parents=True)
    config = load_config(cwd=sub, env={})
    assert config.source == tmp_path / "pyproject.toml"
    assert config.migrations_path == tmp_path.resolve() / "es" / "migrations"


def test_secrets_never_print() -> None:
    settings = ConnectionSettings(
        urls=("https://alice:s3cr3t@search.example:9200",), api_key=Secret("KEY123")
    )
    assert settings.username == "alice"
    assert settings.password is not None
    assert settings.password.reveal() == "s3cr3t"
    assert settings.urls == ("https://search.example:9200",)
    text = repr(settings) + str(settings) + settings.display_url
    assert "s3cr3t" not in text
    assert "KEY123" not in text


def test_secret_in_project_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "esmigrate.toml").write_text('[esmigrate.connection]\npassword = "hunter2"\n')
    with pytest.raises(ConfigError) as err:
        load_config(cwd=tmp_path, env={})
    assert "ESMIGRATE_PASSWORD" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "esmigrate.toml").write_text("[esmigrate\n")
    with pytest.raises(ConfigError) as err:
        load_config(cwd=tmp_path, env={})
    assert "esmigrate.toml" in str(err.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ESMIGRATE_URL": "ftp://x"}, "Invalid cluster URL"),
        ({"ESMIGRATE_TIMEOUT": "soon"}, "request_timeout"),
        ({"ESMIGRATE_VERIFY_CERTS": "maybe"}, "verify_certs"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(cwd=tmp_path, env=env)


def test_unknown_setting_is_named(tmp_path: Path) -> None:
    (tmp_path / "esmigrate.toml").write_text('[esmigrate]\nhistory_indx = "x"\n')
    with pytest.raises(ConfigError, match="history_indx"):
        load_config(cwd=tmp_path, env={})


def test_redact_url() -> None:
    assert redact_url("https://u:p@h:9200/x") == "https://h:9200/x"
    assert redact_url("http://h:9200") == "http://h:9200"


# -- profiles, Elastic Cloud, AWS ------------------------------------------------------------------

PROFILES = """\
[esmigrate]
history_index = ".esmigrate"
[esmigrate.connection]
url = "http://127.0.0.1:9200"
request_timeout = 10

[esmigrate.env.staging.connection]
url = "https://staging.example:9200"
ca_certs = "certs/staging-ca.pem"

[esmigrate.env.prod]
history_index = ".esmigrate-prod"
[esmigrate.env.prod.connection]
cloud_id = "{cloud_id}"
"""


def cloud_id(host: str = "example.es.io:9243", es: str = "abc123") -> str:
    import base64

    return "prod:" + base64.b64encode(f"{host}${es}$kib".encode()).decode()


@pytest.fixture
def profiled(tmp_path: Path) -> Path:
    (tmp_path / "esmigrate.toml").write_text(PROFILES.format(cloud_id=cloud_id()))
    return tmp_path


def test_a_profile_overrides_the_files_own_settings(profiled: Path) -> None:
    base = load_config(cwd=profiled, env={})
    assert base.connection.urls == ("http://127.0.0.1:9200",)
    staging = load_config(cwd=profiled, env={}, profile="staging")
    assert staging.connection.urls == ("https://staging.example:9200",)
    assert staging.connection.ca_certs == "certs/staging-ca.pem"
    assert staging.connection.request_timeout == 10.0  # kept from the file's own table
    prod = load_config(cwd=profiled, env={"ESMIGRATE_ENV": "prod"})
    # A profile's cloud_id replaces the file's url (both name where the cluster is).
    assert prod.connection.cloud_id == cloud_id()
    assert prod.connection.urls == ("https://abc123.example.es.io:9243",)
    assert prod.history_index == ".esmigrate-prod"


def test_the_environment_and_flags_still_win_over_a_profile(profiled: Path) -> None:
    env = {"ESMIGRATE_ENV": "prod", "ESMIGRATE_URL": "http://env:9200"}
    config = load_config(cwd=profiled, env=env)
    assert config.connection.urls == ("http://env:9200",)
    assert config.connection.cloud_id is None
    flagged = load_config(cwd=profiled, env={}, profile="staging", url="http://flag:1")
    assert flagged.connection.urls == ("http://flag:1",)


def test_an_unknown_profile_names_the_known_ones(profiled: Path) -> None:
    with pytest.raises(ConfigError, match="No profile 'qa'") as caught:
        load_config(cwd=profiled, env={}, profile="qa")
    assert "prod, staging" in str(caught.value)
    empty = profiled.parent / f"{profiled.name}-empty"  # no project file here nor above
    empty.mkdir()
    with pytest.raises(ConfigError, match="no project file was found"):
        load_config(cwd=empty, env={"ESMIGRATE_ENV": "prod"})


def test_secrets_are_refused_in_a_profile_too(tmp_path: Path) -> None:
    (tmp_path / "esmigrate.toml").write_text('[esmigrate.env.prod.connection]\napi_key = "k"\n')
    with pytest.raises(ConfigError, match=r"\[esmigrate.env.prod\].*contains the secret 'api_key'"):
        load_config(cwd=tmp_path, env={}, profile="prod")


def test_cloud_id_names_the_deployment_url() -> None:
    assert ConnectionSettings(cloud_id=cloud_id()).urls == ("https://abc123.example.es.io:9243",)
    assert ConnectionSettings(cloud_id=cloud_id("eu.cloud.es.io")).display_url == (
        "https://abc123.eu.cloud.es.io:443"
    )
    with pytest.raises(ConfigError, match="cloud_id is not valid"):
        ConnectionSettings(cloud_id="prod:not-base64!")
    with pytest.raises(ConfigError, match="Both a cluster URL and an Elastic Cloud cloud_id"):
        ConnectionSettings(urls=("http://other:9200",), cloud_id=cloud_id())


def test_aws_settings_are_checked() -> None:
    assert ConnectionSettings(aws_sigv4=True, aws_service="aoss").aws_service == "aoss"
    with pytest.raises(ConfigError, match="Unknown AWS service 'opensearch'"):
        ConnectionSettings(aws_sigv4=True, aws_service="opensearch")
    with pytest.raises(ConfigError, match="SigV4 signing and a username"):
        ConnectionSettings(aws_sigv4=True, username="bob")
    from_env = load_config(
        env={"ESMIGRATE_AWS_SIGV4": "true", "ESMIGRATE_AWS_REGION": "eu-west-1"},
        cwd=Path("/"),
    )
    assert from_env.connection.aws_sigv4
    assert from_env.connection.aws_region == "eu-west-1"


def test_the_projects_kind_of_rollback_point(tmp_path: Path) -> None:
    assert load_config(cwd=tmp_path, env={}).rollback_point_kind == "retained"
    (tmp_path / "esmigrate.toml").write_text(
        '[esmigrate]\nrollback_point_kind = "snapshot"\nsnapshot_repository = "backups"\n'
    )
    config = load_config(cwd=tmp_path, env={})
    assert (config.rollback_point_kind, config.snapshot_repository) == ("snapshot", "backups")
    (tmp_path / "esmigrate.toml").write_text('[esmigrate]\nrollback_point_kind = "copy"\n')
    with pytest.raises(ConfigError, match="rollback_point_kind 'copy'") as info:
        load_config(cwd=tmp_path, env={})
    assert info.value.hint == "Choose one of retained, clone, snapshot."
