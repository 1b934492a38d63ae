"""A request as data: what ``plan`` and ``--dry-run`` print, and what is then sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import orjson


class Sender(Protocol):
    """What sends a request: :class:`~esmigrate.cluster.Cluster`."""

    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = ..., body: Any = ...
    ) -> Any: ...


@dataclass(frozen=True)
class PlannedRequest:
    """One request an operation will send: what ``plan`` and ``--dry-run`` print.

    ``note`` explains requests that repeat or depend on answers (a paged copy, task polling).
    """

    method: str
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None
    note: str | None = None

    @property
    def target(self) -> str:
        """``path?query`` as it goes on the wire."""
        query = {k: query_value(v) for k, v in self.params.items() if v is not None}
        return f"{self.path}?{urlencode(query)}" if query else self.path

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.params:
            data["params"] = dict(self.params)
        if self.body is not None:
            data["body"] = self.body
        if self.note:
            data["note"] = self.note
        return data

    def __str__(self) -> str:
        line = f"{self.method} {self.target}"
        if self.body is not None:
            line += "\n" + orjson.dumps(self.body, option=orjson.OPT_SORT_KEYS).decode()
        return line

    def send(self, cluster: Sender) -> Any:
        """Send it (exactly what :meth:`__str__` shows)."""
        return cluster.request(self.method, self.path, params=self.params or None, body=self.body)


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def query_value(value: Any) -> Any:
    """A query-string parameter as the server reads it (``true``, ``a,b``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value
