"""Durations and maintenance windows (esmigrate.schedule): pure logic, fixed clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from esmigrate.config import load_config
from esmigrate.exceptions import ConfigError
from esmigrate.schedule import format_duration, next_opening, parse_duration, parse_window


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10m", 600),
        ("24h", 86400),
        ("7d", 604800),
        ("1.5h", 5400),
        ("500ms", 0.5),
        (90, 90),
        ("3600", 3600),
    ],
)
def test_durations_are_read_as_elasticsearch_writes_them(text: str | int, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["1w", "h", "-5m", "-5", "ten minutes"])
def test_a_bad_duration_names_the_value_and_the_units(text: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_duration(text, what="--cleanup-after")
    assert "--cleanup-after" in error.value.message
    assert "10m, 24h, 7d" in str(error.value.hint) or "negative" in error.value.message


def test_durations_print_short() -> None:
    assert format_duration(timedelta(minutes=125)) == "2h05m"
    assert format_duration(timedelta(days=3, hours=4)) == "3d4h"
    assert format_duration(timedelta(seconds=45)) == "45s"


def test_a_window_in_berlin_opens_at_berlin_time_in_winter_and_summer() -> None:
    window = parse_window("Sat 02:00-04:00 Europe/Berlin")
    winter = window.opening(datetime(2026, 12, 5, 7, 0, tzinfo=UTC))  # a Saturday, after it
    assert (winter.start, winter.end) == (
        datetime(2026, 12, 12, 1, 0, tzinfo=UTC),
        datetime(2026, 12, 12, 3, 0, tzinfo=UTC),
    )
    summer = window.opening(datetime(2026, 7, 1, tzinfo=UTC))  # a Wednesday
    assert summer.start == datetime(2026, 7, 4, 0, 0, tzinfo=UTC)  # CEST is UTC+2


def test_a_window_open_now_is_the_current_opening() -> None:
    window = parse_window("Sat 02:00-04:00 Europe/Berlin")
    now = datetime(2026, 12, 5, 2, 30, tzinfo=UTC)  # 03:30 in Berlin
    opening = window.opening(now)
    assert opening.contains(now)
    assert opening.end == datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


def test_a_window_crossing_midnight_is_open_after_midnight() -> None:
    window = parse_window("Mon-Fri 22:00-02:00 UTC")
    # Saturday 01:00: Friday's window is still open.
    saturday = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
    assert window.opening(saturday).contains(saturday)
    # Saturday 03:00: the next one is Monday 22:00.
    later = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    assert window.opening(later).start == datetime(2026, 12, 7, 22, 0, tzinfo=UTC)


def test_of_several_windows_the_next_to_open_is_chosen() -> None:
    windows = [parse_window("Sun 01:00-03:00 UTC"), parse_window("daily 23:00-23:30 UTC")]
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)  # Saturday noon
    assert next_opening(windows, now).start == datetime(2026, 12, 5, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Sat 02:00-04:00 Mars/Olympus", "Mars/Olympus"),
        ("Caturday 02:00-04:00 UTC", "caturday"),
        ("Sat 2am-4am UTC", "2am"),
        ("Sat 02:00-02:00 UTC", "02:00"),
        ("Sat 02:00 UTC", "DAYS START-END ZONE"),
    ],
)
def test_a_bad_window_says_what_is_wrong(text: str, named: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_window(text)
    assert named in str(error.value)


def test_the_project_file_declares_windows_and_a_cleanup_delay(tmp_path: Path) -> None:
    (tmp_path / "esmigrate.toml").write_text(
        '[esmigrate.deploy]\nwindows = ["Sat 02:00-04:00 Europe/Berlin"]\ncleanup_after = "24h"\n'
    )
    config = load_config(cwd=tmp_path, env={})
    assert config.deploy_windows == ("Sat 02:00-04:00 Europe/Berlin",)
    assert config.cleanup_after == "24h"
    (tmp_path / "esmigrate.toml").write_text('[esmigrate.deploy]\nwindows = ["Sat 2-4 UTC"]\n')
    with pytest.raises(ConfigError, match="Sat 2-4 UTC"):
        load_config(cwd=tmp_path, env={})
