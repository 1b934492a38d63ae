"""``op``: what a migration script's ``upgrade(op)`` / ``downgrade(op)`` calls.

Each method records an operation (a frozen dataclass) and returns it; nothing is sent while the
script runs. The runner then executes the recorded operations in order, so ``plan`` and
``upgrade --dry-run`` show exactly what ``upgrade`` will send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from esmigrate.cluster import Cluster
from esmigrate.operations._alias import AliasAction, UpdateAliases
from esmigrate.operations._base import Operation
from esmigrate.operations._cluster_ops import (
    CallPython,
    DeleteIndexTemplate,
    DeletePipeline,
    PutIndexTemplate,
    PutPipeline,
    RawRequest,
)
from esmigrate.operations._data import Reindex, UpdateByQuery
from esmigrate.operations._index import (
    CreateIndex,
    DeleteIndex,
    PutMapping,
    Refresh,
    UpdateSettings,
)
from esmigrate.operations._migrate import Migrate, Strategy
from esmigrate.operations._schema import index_definition, mapping_of, plain
from esmigrate.schema.mapping import mapping_of as adapt_mapping
from esmigrate.transform import Condition, Transform
from esmigrate.transform.painless import normalize_script

OpT = TypeVar("OpT", bound=Operation)


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a non-empty string, not {value!r}")
    return value


class Operations:
    """The recorder handed to ``upgrade(op)``. ``op.operations`` lists what was recorded."""

    def __init__(self) -> None:
        self._recorded: list[Operation] = []

    @property
    def operations(self) -> tuple[Operation, ...]:
        return tuple(self._recorded)

    def add(self, operation: OpT) -> OpT:
        """Record any :class:`Operation` (including your own subclasses)."""
        if not isinstance(operation, Operation):
            raise TypeError(f"op.add takes an Operation, not {type(operation).__name__}")
        self._recorded.append(operation)
        return operation

    # -- indices --------------------------------------------------------------------------------

    def create_index(
        self,
        index: Any,
        *,
        mappings: Any = None,
        settings: Mapping[str, Any] | None = None,
        aliases: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> CreateIndex:
        """Create ``index`` (a name, an ``Index`` object or a ``Document`` class).

        ``mappings`` takes a dict, a Document class or a Mapping object; explicit arguments
        override what an Index/Document declares; ``name`` renames it (``posts-v2``).
        """
        body: dict[str, Any] = {}
        if isinstance(index, str):
            index_name: str | None = index
        else:
            index_name, body = index_definition(index)
        index_name = name or index_name
        if not index_name:
            raise TypeError(
                "create_index needs an index name: declare `class Index: name = ...` on the "
                "Document or pass name=..."
            )
        return self.add(
            CreateIndex(
                _name(index_name, "index"),
                settings=plain(settings, "settings") or body.get("settings"),
                mappings=mapping_of(mappings) or body.get("mappings"),
                aliases=plain(aliases, "aliases") or body.get("aliases"),
            )
        )

    def delete_index(self, index: str, *, missing_ok: bool = True) -> DeleteIndex:
        """Delete ``index`` (already gone: fine, unless ``missing_ok=False``)."""
        return self.add(DeleteIndex(_name(index, "index"), missing_ok=missing_ok))

    def put_mapping(self, index: str, mappings: Any) -> PutMapping:
        """Add fields to ``index``: a dict (``{"properties": ...}``), Document class or Mapping."""
        body = mapping_of(mappings)
        if not body:
            raise TypeError("put_mapping needs a mapping")
        return self.add(PutMapping(_name(index, "index"), body))

    def update_settings(self, index: str, settings: Mapping[str, Any]) -> UpdateSettings:
        """Change dynamic settings of ``index``."""
        body = plain(settings, "settings")
        if not body:
            raise TypeError("update_settings needs settings")
        return self.add(UpdateSettings(_name(index, "index"), body))

    def refresh(self, index: str) -> Refresh:
        return self.add(Refresh(_name(index, "index")))

    # -- aliases --------------------------------------------------------------------------------

    def update_aliases(self, actions: Iterable[AliasAction | Mapping[str, Any]]) -> UpdateAliases:
        """Several alias actions, atomically. Actions are :class:`AliasAction` or the REST form
        (``{"add": {"index": "a", "alias": "b"}}``)."""
        parsed: list[AliasAction] = []
        for action in actions:
            if isinstance(action, AliasAction):
                parsed.append(action)
                continue
            if not isinstance(action, Mapping) or len(action) != 1:
                raise TypeError(f"an alias action must be one {{verb: {{...}}}}, not {action!r}")
            verb, spec = next(iter(action.items()))
            if verb not in ("add", "remove", "remove_index"):
                raise ValueError(f"unknown alias action {verb!r} (add, remove, remove_index)")
            parsed.append(
                AliasAction(
                    verb,  # type: ignore[arg-type]  # checked just above
                    spec["index"],
                    spec.get("alias"),
                    is_write_index=spec.get("is_write_index"),
                    filter=plain(spec.get("filter"), "filter"),
                    routing=spec.get("routing"),
                )
            )
        return self.add(UpdateAliases(tuple(parsed)))

    def add_alias(
        self,
        index: str,
        alias: str,
        *,
        is_write_index: bool | None = None,
        filter: Mapping[str, Any] | None = None,
        routing: str | None = None,
    ) -> UpdateAliases:
        return self.update_aliases(
            [AliasAction("add", index, alias, is_write_index, plain(filter, "filter"), routing)]
        )

    def remove_alias(self, index: str, alias: str) -> UpdateAliases:
        return self.update_aliases([AliasAction("remove", index, alias)])

    def swap_alias(
        self, alias: str, *, old: str, new: str, is_write_index: bool | None = None
    ) -> UpdateAliases:
        """Point ``alias`` from ``old`` to ``new`` in one atomic request."""
        return self.update_aliases(
            [
                AliasAction("remove", old, alias),
                AliasAction("add", new, alias, is_write_index=is_write_index),
            ]
        )

    # -- documents ------------------------------------------------------------------------------

    def reindex(
        self,
        source: str,
        dest: str,
        *,
        query: Mapping[str, Any] | None = None,
        script: Mapping[str, Any] | str | None = None,
        transform: Transform | None = None,
        slices: int | str | None = "auto",
        conflicts: str | None = None,
        page_size: int = 1000,
        refresh: bool = True,
    ) -> Reindex:
        """Copy ``source`` into ``dest``: server-side (``script=`` painless, a str or a dict) or
        through a Python ``transform(doc) -> doc | None`` (None leaves the document out). Through
        Python, a document the transform raises on or ``dest`` rejects stops the copy with that
        error; nothing is dead-lettered (``migrate`` does that).

        A one-shot copy: writes that reach ``source`` while it runs are not carried over. To
        move data an application keeps writing, use :meth:`migrate` (catch-up, a short write
        block, an atomic alias swap).
        """
        return self.add(
            Reindex(
                _name(source, "source"),
                _name(dest, "dest"),
                query=plain(query, "query"),
                script=normalize_script(
                    plain(script, "script") if isinstance(script, Mapping) else script
                ),
                transform=transform,
                slices=slices,
                conflicts=conflicts,
                page_size=page_size,
                refresh=refresh,
            )
        )

    def update_by_query(
        self,
        index: str,
        *,
        query: Mapping[str, Any] | None = None,
        script: Mapping[str, Any] | str | None = None,
        slices: int | str | None = "auto",
        conflicts: str | None = None,
        refresh: bool = True,
    ) -> UpdateByQuery:
        """Rewrite matching documents of ``index`` with a painless script (write it so that a
        second run changes nothing)."""
        return self.add(
            UpdateByQuery(
                _name(index, "index"),
                query=plain(query, "query"),
                script=normalize_script(
                    plain(script, "script") if isinstance(script, Mapping) else script
                ),
                slices=slices,
                conflicts=conflicts,
                refresh=refresh,
            )
        )

    # -- cluster objects ------------------------------------------------------------------------

    def put_index_template(
        self,
        name: str,
        *,
        index_patterns: Iterable[str],
        template: Any = None,
        settings: Mapping[str, Any] | None = None,
        mappings: Any = None,
        aliases: Mapping[str, Any] | None = None,
        priority: int | None = None,
        composed_of: Iterable[str] | None = None,
        version: int | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> PutIndexTemplate:
        """A composable index template. ``template`` may be an Index object or Document class
        (its settings, mappings, aliases); the keyword arguments override its parts."""
        parts: dict[str, Any] = {}
        if template is not None:
            parts = (
                plain(template, "template") or {}
                if isinstance(template, Mapping)
                else index_definition(template)[1]
            )
        for key, value in (
            ("settings", plain(settings, "settings")),
            ("mappings", mapping_of(mappings)),
            ("aliases", plain(aliases, "aliases")),
        ):
            if value:
                parts[key] = value
        patterns = [index_patterns] if isinstance(index_patterns, str) else list(index_patterns)
        body: dict[str, Any] = {"index_patterns": patterns}
        if parts:
            body["template"] = parts
        if priority is not None:
            body["priority"] = priority
        if composed_of is not None:
            body["composed_of"] = list(composed_of)
        if version is not None:
            body["version"] = version
        if meta is not None:
            body["_meta"] = plain(meta, "meta")
        return self.add(PutIndexTemplate(_name(name, "name"), body))

    def delete_index_template(self, name: str, *, missing_ok: bool = True) -> DeleteIndexTemplate:
        return self.add(DeleteIndexTemplate(_name(name, "name"), missing_ok=missing_ok))

    def put_pipeline(
        self,
        id: str,
        body: Mapping[str, Any] | None = None,
        *,
        processors: Iterable[Mapping[str, Any]] | None = None,
        description: str | None = None,
    ) -> PutPipeline:
        """An ingest pipeline: a full ``body``, or ``processors`` (and a ``description``)."""
        data = plain(body, "body") or {}
        if processors is not None:
            data["processors"] = [dict(p) for p in processors]
        if description is not None:
            data["description"] = description
        if "processors" not in data:
            raise TypeError("put_pipeline needs processors (or a body with them)")
        return self.add(PutPipeline(_name(id, "id"), data))

    def delete_pipeline(self, id: str, *, missing_ok: bool = True) -> DeletePipeline:
        return self.add(DeletePipeline(_name(id, "id"), missing_ok=missing_ok))

    # -- escape hatches -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        ignore: Iterable[int] = (),
    ) -> RawRequest:
        """Any REST request; statuses in ``ignore`` count as success (idempotency)."""
        return self.add(
            RawRequest(
                _name(method, "method"),
                _name(path, "path"),
                params=plain(params, "params"),
                body=body,
                ignore=tuple(ignore),
            )
        )

    def call(self, fn: Callable[[Cluster], Any], *, description: str | None = None) -> CallPython:
        """Run ``fn(cluster)`` at this point (idempotent Python; not listable in a plan)."""
        return self.add(CallPython(fn, description))

    # -- live data ------------------------------------------------------------------------------

    def migrate(
        self,
        alias: str,
        target: Any,
        *,
        settings: Mapping[str, Any] | None = None,
        transform: Callable[[dict[str, Any]], Any] | None = None,
        script: Mapping[str, Any] | str | None = None,
        strategy: Strategy = "auto",
        backfill: bool | Mapping[str, Any] | str | None = None,
        max_failures: int = 0,
        requests_per_second: float | None = None,
        write_alias: str | None = None,
        upgrade_old_writes: bool | Condition = False,
        rollback_point_kind: str | None = None,
        **options: Any,
    ) -> Migrate:
        """Move the live data behind ``alias`` to the mapping ``target`` describes (a Document
        class, an Index, a mapping dict), with zero downtime.

        ``strategy="auto"`` picks from the classified diff of the live mapping and the target:
        in-place put-mapping, in-place with backfill, or blue-green (a new index, catch-up, a
        short write block, an atomic alias swap). ``transform`` (a RuleSet or ``doc -> doc``)
        or ``script`` (Painless) rewrite documents on the way (blue-green). ``options`` go to
        :class:`esmigrate.migrate.BlueGreen` (``catchup_threshold``, ``page_size``...).
        ``upgrade_old_writes`` (``True``, or a Condition naming old documents by their shape):
        from the cut-over on, documents writers still send in the old shape are upgraded by the
        rule set in an ingest pipeline of the new index (``esmigrate old-writes remove ALIAS``
        takes it off). ``rollback_point_kind``: the kind of the rollback point recorded at the
        cut-over, or (``clone``/``snapshot``) before an in-place change; default: the project's
        ``rollback_point_kind``.
        """
        return self.add(
            Migrate(
                alias=_name(alias, "alias"),
                mappings=adapt_mapping(target),
                settings=plain(settings, "settings"),
                transform=transform,
                script=normalize_script(
                    plain(script, "script") if isinstance(script, Mapping) else script
                ),
                strategy=strategy,
                backfill=plain(backfill, "backfill") if isinstance(backfill, Mapping) else backfill,
                max_failures=max_failures,
                requests_per_second=requests_per_second,
                write_alias=write_alias,
                upgrade_old_writes=upgrade_old_writes,
                rollback_point_kind=rollback_point_kind,
                options=dict(options),
            )
        )
