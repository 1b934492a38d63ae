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
