"""The public API is what we intend it to be (httpx-style): additions are deliberate."""

from __future__ import annotations

import esmigrate


def test_exported_names() -> None:
    assert sorted(esmigrate.__all__) == [
        "Cluster",
        "Config",
        "ConnectionSettings",
        "EsmigrateError",
        "Operations",
        "RuleSet",
        "SchemaVersion",
        "VersionedDocument",
        "__version__",
        "command",
        "connect",
        "load_config",
        "upgrades",
    ]
    for name in esmigrate.__all__:
        assert getattr(esmigrate, name) is not None


def test_every_error_is_rooted() -> None:
    import inspect

    from esmigrate import exceptions
    from esmigrate.exceptions import DeployRolledBack, PreflightFailed

    errors = [
        obj
        for _, obj in inspect.getmembers(exceptions, inspect.isclass)
        if issubclass(obj, Exception)
    ]
    assert len(errors) > 20
    for error in [*errors, PreflightFailed, DeployRolledBack]:
        assert issubclass(error, esmigrate.EsmigrateError), error
