"""Index-level operations: create, delete, put mapping, update settings, refresh."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from esmigrate.cluster import Cluster, PlannedRequest
from esmigrate.exceptions import OperationConflict, RequestError
from esmigrate.operations._base import (
    DeleteRequest,
    ExecContext,
    OneRequest,
    Operation,
    OpResult,
    acknowledged,
)
from esmigrate.schema.diff import require_applied


def _scalar(value: Any) -> Any:
    # The server echoes settings and some mapping parameters as strings ("false", "0").
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _show(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode() if value is not None else "-"


def mapping_differences(wanted: Any, actual: Any, path: str = "mappings") -> list[str]:
    """Where ``actual`` (what the server reports) fails to contain ``wanted``.

    Extra fields in ``actual`` are allowed (documents may have added dynamic ones); every
    wanted field must be there with the same parameters.
    """
    if isinstance(wanted, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{path}: wanted {_show(wanted)}, found {_show(actual)}"]
        found: list[str] = []
        for key, value in wanted.items():
            # The server leaves out `"type": "object"` on fields that have properties.
            if key == "type" and value == "object" and "type" not in actual:
                continue
            if key not in actual:
                found.append(f"{path}.{key}: wanted {_show(value)}, found nothing")
            else:
                found.extend(mapping_differences(value, actual[key], f"{path}.{key}"))
        return found
    if isinstance(wanted, (list, tuple)):
        if not isinstance(actual, (list, tuple)) or len(actual) != len(wanted):
            return [f"{path}: wanted {_show(wanted)}, found {_show(actual)}"]
        found = []
        for i, (w, a) in enumerate(zip(wanted, actual, strict=True)):
            found.extend(mapping_differences(w, a, f"{path}[{i}]"))
        return found
    if _scalar(wanted) != _scalar(actual):
        return [f"{path}: wanted {_show(wanted)}, found {_show(actual)}"]
    return []


@dataclass(frozen=True)
class CreateIndex(Operation):
    """Create an index. Already there with a containing mapping: unchanged; different: error."""

    kind: ClassVar[str] = "create_index"
    index: str
    settings: dict[str, Any] | None = None
    mappings: dict[str, Any] | None = None
    aliases: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        parts = {"settings": self.settings, "mappings": self.mappings, "aliases": self.aliases}
        return {k: v for k, v in parts.items() if v}

    def describe(self) -> list[PlannedRequest]:
        return [PlannedRequest("PUT", f"/{self.index}", body=self.body())]

    def summary(self) -> str:
        return f"create index {self.index}"

    def execute(self, cluster: Cluster, ctx: ExecContext) -> OpResult:
        try:
            answer = self.describe()[0].send(cluster)
        except RequestError as exc:
            if exc.error_type != "resource_already_exists_exception":
                raise
            return self._reconcile(cluster)
        return OpResult("done", acknowledged(answer))

    def _reconcile(self, cluster: Cluster) -> OpResult:
        current: dict[str, Any] = cluster.request("GET", f"/{self.index}/_mapping")
        actual: Any = {}
        for entry in current.values():
            actual = entry.get("mappings", {})
        problems = mapping_differences(self.mappings or {}, actual)
        if problems:
            shown = "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
            raise OperationConflict(
                f"Index {self.index} already exists with a different mapping: {shown}.",
                hint="If the existing index is stale, delete it (by hand or with "
                "op.delete_index before this operation); if its mapping is right, change the "
                "migration to match it, or use op.put_mapping to add fields.",
            )
        return OpResult("unchanged", {"reason": "the index exists with this mapping"})


@dataclass(frozen=True)
class DeleteIndex(DeleteRequest):
    """Delete an index; an index already gone is fine unless ``missing_ok`` is False."""

    kind: ClassVar[str] = "delete_index"
    what: ClassVar[str] = "index"
    index: str
    missing_ok: bool = True

    def describe(self) -> list[PlannedRequest]:
        return [PlannedRequest("DELETE", f"/{self.index}")]

    def summary(self) -> str:
        return f"delete index {self.index}"


@dataclass(frozen=True)
class PutMapping(Operation):
    """Add fields (or updatable parameters) to an index's mapping."""

    kind: ClassVar[str] = "put_mapping"
    index: str
    mappings: dict[str, Any]

    def describe(self) -> list[PlannedRequest]:
        return [PlannedRequest("PUT", f"/{self.index}/_mapping", body=self.mappings)]

    def summary(self) -> str:
        fields = sorted((self.mappings.get("properties") or {}).keys())
        what = f" ({', '.join(fields)})" if fields else ""
        return f"put mapping on {self.index}{what}"

    def execute(self, cluster: Cluster, ctx: ExecContext) -> OpResult:
        answer = self.describe()[0].send(cluster)
        # Acknowledged is not applied: the engine accepts and ignores some changes.
        require_applied(cluster, self.index, self.mappings)
        return OpResult("done", acknowledged(answer))


@dataclass(frozen=True)
class UpdateSettings(OneRequest):
    """Change dynamic index settings (``number_of_replicas``, ``refresh_interval``...)."""

    kind: ClassVar[str] = "update_settings"
    index: str
    settings: dict[str, Any]

    def describe(self) -> list[PlannedRequest]:
        return [PlannedRequest("PUT", f"/{self.index}/_settings", body=self.settings)]

    def summary(self) -> str:
        return f"update settings of {self.index}"


@dataclass(frozen=True)
class Refresh(OneRequest):
    """Make recent writes searchable."""

    kind: ClassVar[str] = "refresh"
    index: str

    def describe(self) -> list[PlannedRequest]:
        return [PlannedRequest("POST", f"/{self.index}/_refresh")]

    def summary(self) -> str:
        return f"refresh {self.index}"
