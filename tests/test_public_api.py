"""The public API is what we intend it to be (httpx-style): additions are deliberate."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

import esmigrate

#: The packages whose __init__ is their public API (re-exports only, nothing of their own).
PUBLIC_MODULES = [
    "esmigrate",
    "esmigrate.cluster",
    "esmigrate.command",
    "esmigrate.migrate",
    "esmigrate.operations",
    "esmigrate.rollback",
    "esmigrate.runtime",
    "esmigrate.schema",
    "esmigrate.state",
    "esmigrate.testing",
    "esmigrate.transform",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_lists_exactly_the_public_names(name: str) -> None:
    """``__all__`` names every public (non-underscore) name the module defines or imports, and
    nothing else: a name added to a module is exported, or made private, on purpose."""
    module = importlib.import_module(name)
    exported = set(module.__all__)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and attr != "annotations"  # from __future__ import annotations
        # Submodules become attributes of their package when anything imports them.
        and not (isinstance(value, ModuleType) and attr not in exported)
    }
    assert len(module.__all__) == len(exported), "a name is listed twice"
    assert exported - {"__version__"} == public
    for attr in exported:
        assert getattr(module, attr) is not None


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
