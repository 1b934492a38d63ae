"""Alias changes, applied atomically in one ``POST /_aliases``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from esmigrate.cluster import Cluster, PlannedRequest
from esmigrate.exceptions import NotFoundError, RequestError
from esmigrate.operations._base import ExecContext, Operation, OpResult


@dataclass(frozen=True)
class AliasAction:
    """One action of an atomic alias change."""

    action: Literal["add", "remove", "remove_index"]
    index: str
    alias: str | None = None
    is_write_index: bool | None = None
    filter: dict[str, Any] | None = None
    routing: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ("add", "remove", "remove_index"):
            raise ValueError(f"unknown alias action {self.action!r} (add, remove, remove_index)")
        if self.action != "remove_index" and not self.alias:
            raise ValueError(f"the alias action {self.action!r} needs an alias name")

    def to_body(self) -> dict[str, Any]:
        inner: dict[str, Any] = {"index": self.index}
        if self.alias is not None:
            inner["alias"] = self.alias
        if self.is_write_index is not None:
            inner["is_write_index"] = self.is_write_index
        if self.filter is not None:
            inner["filter"] = self.filter
        if self.routing is not None:
            inner["routing"] = self.routing
        return {self.action: inner}

    def __str__(self) -> str:
        if self.action == "add":
            return f"+{self.alias}→{self.index}"
        if self.action == "remove":
            return f"-{self.alias}→{self.index}"
        return f"remove index {self.index}"


@dataclass(frozen=True)
class UpdateAliases(Operation):
    """Several alias actions in one atomic request: readers never see a half-done swap.

    Re-running after success converges: when the request fails (e.g. removing an alias that
    is already gone), the current aliases are read and, if every action's effect is already
    there, the operation is ``unchanged``.
    """

    kind: ClassVar[str] = "update_aliases"
    actions: tuple[AliasAction, ...]

    def __post_init__(self) -> None:
        if not self.actions:
            raise ValueError("update_aliases needs at least one action")

    def describe(self) -> list[PlannedRequest]:
        body = {"actions": [a.to_body() for a in self.actions]}
        return [PlannedRequest("POST", "/_aliases", body=body)]

    def summary(self) -> str:
        return "update aliases " + ", ".join(str(a) for a in self.actions)

    def execute(self, cluster: Cluster, ctx: ExecContext) -> OpResult:
        try:
            answer = self.describe()[0].send(cluster)
        except RequestError as exc:
            if not self._already_done(cluster):
                raise exc from None
            return OpResult("unchanged", {"reason": "the aliases are already so"})
        return OpResult("done", {"acknowledged": bool(answer.get("acknowledged"))})

    def _already_done(self, cluster: Cluster) -> bool:
        for action in self.actions:
            if action.action == "remove_index":
                if cluster.exists(action.index):
                    return False
                continue
            assert action.alias is not None
            try:
                current = cluster.request("GET", f"/_alias/{action.alias}")
            except NotFoundError:
                current = {}
            entry = (current.get(action.index) or {}).get("aliases", {}).get(action.alias)
            if action.action == "remove" and entry is not None:
                return False
            if action.action == "add":
                if entry is None:
                    return False
                if action.is_write_index is not None and bool(
                    entry.get("is_write_index", False)
                ) != bool(action.is_write_index):
                    return False
        return True
