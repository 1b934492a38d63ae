"""User checks of ``deploy --check [ALIAS=]module:fn``: the application's own health signals,
watched beside the standard checks, tripping the same automatic rollback."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from esmigrate import command
from esmigrate.cluster import Cluster
from esmigrate.config import Config
from esmigrate.exceptions import ConfigError
from esmigrate.rollback import CallableCheck, Check, Sample


@dataclass(frozen=True)
class UserCheck:
    """One ``--check``: the alias it watches (None: every migrated alias) and what it runs: a
    function ``fn(cluster) -> bool | Sample`` or an object with ``name`` and
    ``sample(cluster)`` (:class:`~esmigrate.rollback.Check`)."""

    spec: str
    alias: str | None
    target: Callable[[Cluster], Any] | Check

    def checks_for(self, aliases: Sequence[str]) -> list[Check]:
        """The checks this adds to the watch of a rollback point moving ``aliases``, named
        ``<alias>/<name>`` (or ``<name>`` when it watches every alias)."""
        if self.alias is not None and self.alias not in aliases:
            return []
        if hasattr(self.target, "sample"):
            check: Check = self.target  # type: ignore[assignment]
        else:
            fn = self.target
            assert callable(fn)
            name = getattr(fn, "__name__", "check")
            check = CallableCheck(_failing_on_raise(fn, name), name)
        if self.alias is not None and not check.name.startswith(f"{self.alias}/"):
            check.name = f"{self.alias}/{check.name}"
        return [check]


def _failing_on_raise(fn: Callable[[Cluster], Any], name: str) -> Callable[[Cluster], Any]:
    """A check that raises is a failed sample naming the exception, as a health call that
    fails is: the signal could not be read. (Raising would end the whole watch and read as a
    bug of esmigrate.)"""

    def sample(cluster: Cluster) -> Any:
        try:
            return fn(cluster)
        except Exception as exc:
            return Sample(name, False, None, f"raised {type(exc).__name__}: {exc}")

    return sample


def load_checks(config: Config, specs: Sequence[str]) -> list[UserCheck]:
    """Import every ``[ALIAS=]module:fn`` before anything is written; :class:`ConfigError`
    names a reference that does not import or is not a check."""
    loaded = []
    for spec in specs:
        alias, sep, ref = spec.rpartition("=")
        target = command.load_object(config, ref)
        if not (callable(target) or hasattr(target, "sample")):
            raise ConfigError(
                f"--check {spec}: {ref} is a {type(target).__name__}, not a check.",
                hint="Name a function fn(cluster) returning True when healthy (or a Sample), "
                "or an object with name and sample(cluster).",
            )
        if sep and not alias:
            raise ConfigError(
                f"--check {spec}: the alias before '=' is empty.",
                hint="Write --check ALIAS=module:fn, or --check module:fn for every alias.",
            )
        loaded.append(UserCheck(spec, alias or None, target))  # type: ignore[arg-type]
    return loaded
