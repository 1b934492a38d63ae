"""Versioned documents: upgrade steps between schema versions and the path through them.

Each document type has an :class:`Upgrades` graph: steps registered between two versions
(``@upgrades("1.0", "2.0")``), each a pure function from one ``_source`` dict to the next. Going
from any stored version to the latest is a shortest-path search through that graph, so a document
written at 1.0 reaches 3.0 through 1.0 → 2.0 → 3.0 without anyone writing a 1.0 → 3.0 step.

The functions are pure (no I/O), so the same graph serves three callers: an application that
upgrades lazily on read (sync or async: nothing to await), a migration that upgrades in bulk (an
:class:`Upgrades` is a ``doc -> doc`` callable) and a test.

:class:`VersionedDocument` is a mixin for ``elasticsearch.dsl`` (or the separate ``elasticsearch_dsl``
8.x package) and ``opensearchpy`` ``Document`` classes (sync and async): it adds
``schema_version``, ``created_at``, ``updated_at``, ``migrated_from_version`` and
``migration_timestamp`` to the mapping, stamps them on save and collects the class's
``@upgrades`` steps::

    from elasticsearch.dsl import Document, Text    # or: from opensearchpy import Document, Text

    class BlogPost(VersionedDocument, Document):    # the mixin comes first
        __schema_version__ = "2.0"
        title = Text()

        @upgrades("1.0", "2.0")
        def add_category(source):
            return {**source, "category": "general"}

    post = migrate_to_latest(BlogPost.get(id="1"))  # or migrate_to_latest(source_dict, BlogPost)
"""

from __future__ import annotations

import copy
import sys
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar, cast, overload

from esmigrate.exceptions import InvalidVersion, NoUpgradePath, SchemaError, TransformError
from esmigrate.schema.versions import SchemaVersion, VersionLike

#: An upgrade step's function: takes a ``_source`` dict (a private deep copy: mutate it freely)
#: and returns the upgraded dict, or None after changing it in place.
UpgradeFunc = Callable[[dict[str, Any]], "dict[str, Any] | None"]

#: The metadata fields every versioned document carries.
VERSION_FIELD = "schema_version"
METADATA_FIELDS = (
    "schema_version",
    "created_at",
    "updated_at",
    "migrated_from_version",
    "migration_timestamp",
)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


@dataclass(frozen=True)
class UpgradeStep:
    """One registered upgrade: ``func`` turns a document at ``from_version`` into ``to_version``."""

    from_version: SchemaVersion
    to_version: SchemaVersion
    func: UpgradeFunc
    name: str

    def __call__(self, source: dict[str, Any]) -> dict[str, Any] | None:
        return self.func(source)

    def __str__(self) -> str:
        return f"{self.from_version} → {self.to_version} ({self.name})"


def upgrades(
    from_version: VersionLike, to_version: VersionLike
) -> Callable[[UpgradeFunc], UpgradeStep]:
    """Mark a function as the upgrade step ``from_version`` → ``to_version``.

    Inside a :class:`VersionedDocument` class body the step joins that class's graph. Elsewhere,
    add the result to an :class:`Upgrades` graph (or use :meth:`Upgrades.step`).
    """
    low, high = SchemaVersion.parse(from_version), SchemaVersion.parse(to_version)
    if low == high:
        raise SchemaError(
            f"An upgrade step must change the version; both sides are {low}.",
            hint="Register steps between two different versions.",
        )

    def decorate(func: UpgradeFunc) -> UpgradeStep:
        if isinstance(func, UpgradeStep):
            raise SchemaError(f"{func.name} is already an upgrade step ({func}).")
        label = getattr(func, "name", None)  # a RuleSet's name
        if not isinstance(label, str):
            label = getattr(func, "__qualname__", None) or repr(func)
        return UpgradeStep(low, high, func, label)

    return decorate


class Upgrades:
    """The upgrade graph of one document type, and the ``doc -> doc`` callable that walks it.

    :param name: the document type, for messages (``"BlogPost"``).
    :param latest: the version documents are upgraded to.
    :param unversioned: the version assumed for documents that carry no version field (those
        written before versioning began). None: such documents are an error.
    :param field: the field holding the version in ``_source``.
    """

    def __init__(
        self,
        name: str,
        latest: VersionLike,
        *,
        unversioned: VersionLike | None = None,
        field: str = VERSION_FIELD,
        steps: Iterable[UpgradeStep] = (),
    ) -> None:
        self.name = name
        self.latest = SchemaVersion.parse(latest)
        self.unversioned = None if unversioned is None else SchemaVersion.parse(unversioned)
        self.field = field
        self._steps: dict[tuple[SchemaVersion, SchemaVersion], UpgradeStep] = {}
        for step in steps:
            self.add(step)

    def __repr__(self) -> str:
        return f"Upgrades({self.name!r}, latest='{self.latest}', steps={len(self._steps)})"

    # -- building -------------------------------------------------------------------------------

    def add(self, step: UpgradeStep) -> UpgradeStep:
        """Register ``step``; two steps between the same versions are an error."""
        key = (step.from_version, step.to_version)
        existing = self._steps.get(key)
        if existing is not None and existing.func is not step.func:
            raise SchemaError(
                f"{self.name} has two upgrade steps from {key[0]} to {key[1]}: "
                f"{existing.name} and {step.name}.",
                hint="Keep one step per pair of versions.",
            )
        self._steps[key] = step
        return step

    def step(
        self, from_version: VersionLike, to_version: VersionLike
    ) -> Callable[[UpgradeFunc], UpgradeStep]:
        """Decorator: register the function as the step ``from_version`` → ``to_version``."""
        mark = upgrades(from_version, to_version)

        def decorate(func: UpgradeFunc) -> UpgradeStep:
            return self.add(mark(func))

        return decorate

    @property
    def steps(self) -> list[UpgradeStep]:
        """All steps, ordered by (from, to) version."""
        return [self._steps[key] for key in sorted(self._steps)]

    @property
    def versions(self) -> list[SchemaVersion]:
        """Every version named by a step or as the latest, ascending."""
        found = {self.latest}
        for low, high in self._steps:
            found.update((low, high))
        return sorted(found)

    # -- path finding ---------------------------------------------------------------------------

    def path(
        self, from_version: VersionLike, to_version: VersionLike | None = None
    ) -> list[UpgradeStep]:
        """The fewest steps from one version to another (default: to the latest).

        Breadth-first search over the registered steps; among paths of equal length the one
        through lower versions is taken, so the answer never depends on registration order.
        Raises :class:`~esmigrate.exceptions.NoUpgradePath` naming both versions when no chain of
        steps joins them.
        """
        start = SchemaVersion.parse(from_version)
        goal = self.latest if to_version is None else SchemaVersion.parse(to_version)
        if start == goal:
            return []
        outgoing: dict[SchemaVersion, list[UpgradeStep]] = {}
        for key in sorted(self._steps):
            outgoing.setdefault(key[0], []).append(self._steps[key])
        came_by: dict[SchemaVersion, UpgradeStep | None] = {start: None}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if node == goal:
                break
            for step in outgoing.get(node, []):
                if step.to_version not in came_by:
                    came_by[step.to_version] = step
                    queue.append(step.to_version)
        if goal not in came_by:
            raise self._no_path(start, goal)
        path: list[UpgradeStep] = []
        node = goal
        while node != start:
            edge = came_by[node]
            assert edge is not None
            path.append(edge)
            node = edge.from_version
        path.reverse()
        return path

    def _no_path(self, start: SchemaVersion, goal: SchemaVersion) -> NoUpgradePath:
        pairs = [(str(a), str(b)) for a, b in sorted(self._steps)]
        listed = ", ".join(f"{a} → {b}" for a, b in pairs) or "none"
        if start > goal and not any(a > b for a, b in self._steps):
            hint = (
                f"The document is newer than {self.name}'s schema ({goal}): is this code older "
                "than the data? Deploy the newer code, or register a downgrade step."
            )
        else:
            hint = (
                f'Register the missing step(s), e.g. @upgrades("{start}", "{goal}") on a function '
                f"that turns a {start} document into {goal}."
            )
        return NoUpgradePath(
            f"No upgrade path for {self.name} from version {start} to {goal}; "
            f"registered steps: {listed}.",
            doc_type=self.name,
            from_version=str(start),
            to_version=str(goal),
            steps=pairs,
            hint=hint,
        )

    # -- applying -------------------------------------------------------------------------------

    def version_of(self, source: Mapping[str, Any]) -> SchemaVersion:
        """The schema version a ``_source`` dict was written at."""
        raw = source.get(self.field)
        if raw is None:
            if self.unversioned is None:
                raise SchemaError(
                    f"The {self.name} document has no {self.field!r} field.",
                    hint="Set unversioned='1.0' (or __schema_unversioned__ on the class) to say "
                    "which version documents written before versioning are.",
                )
            return self.unversioned
        try:
            return SchemaVersion.parse(raw)
        except InvalidVersion as exc:
            raise InvalidVersion(
                f"The {self.name} document has an invalid {self.field!r}: {raw!r}.",
                text=raw,
                hint=exc.hint,
            ) from None

    def needs_upgrade(
        self, source: Mapping[str, Any], to_version: VersionLike | None = None
    ) -> bool:
        """True when ``source`` is not at ``to_version`` (default: the latest)."""
        goal = self.latest if to_version is None else SchemaVersion.parse(to_version)
        return self.version_of(source) != goal

    def migrate(
        self,
        source: Mapping[str, Any],
        to_version: VersionLike | None = None,
        *,
        now: datetime | None = None,
        doc_id: str | None = None,
    ) -> dict[str, Any]:
        """Upgrade a ``_source`` dict to ``to_version`` (default: the latest); returns a new dict.

        Applies the steps of :meth:`path` in order, then records ``schema_version``,
        ``migrated_from_version`` (the version the document had) and ``migration_timestamp``.
        A document already at the target comes back as an unchanged copy. The input is never
        modified. A step that raises becomes a :class:`~esmigrate.exceptions.TransformError`
        naming the step and (when given) ``doc_id``.
        """
        goal = self.latest if to_version is None else SchemaVersion.parse(to_version)
        current = self.version_of(source)
        result: dict[str, Any] = copy.deepcopy(dict(source))
        if current == goal:
            return result
        for step in self.path(current, goal):
            try:
                out = step.func(result)
            except Exception as exc:
                raise TransformError(
                    f"Upgrade step {step} failed"
                    + (f" on document {doc_id}" if doc_id is not None else "")
                    + f": {type(exc).__name__}: {exc}",
                    rule=f"upgrade {step.from_version}→{step.to_version}",
                    doc_id=doc_id,
                    cause=exc,
                ) from exc
            if out is not None:
                result = out
            if not isinstance(result, dict):
                raise TransformError(
                    f"Upgrade step {step} returned {type(result).__name__}, not a dict.",
                    rule=f"upgrade {step.from_version}→{step.to_version}",
                    doc_id=doc_id,
                    hint="Return the upgraded _source dict (or None after changing it in place).",
                )
        result[self.field] = str(goal)
        result["migrated_from_version"] = str(current)
        result["migration_timestamp"] = _iso(now or _now())
        return result

    def migrate_to_latest(
        self, source: Mapping[str, Any], *, now: datetime | None = None
    ) -> dict[str, Any]:
        """:meth:`migrate` to the latest version."""
        return self.migrate(source, now=now)

    def __call__(self, source: dict[str, Any]) -> dict[str, Any]:
        """``doc -> doc``: what a migration's transform is. Same as :meth:`migrate_to_latest`."""
        return self.migrate(source)


# -- the Document mixin --------------------------------------------------------------------------

# The DSL packages whose Document classes the mixin works with: elasticsearch-py's own (8.18+), the
# separate elasticsearch-dsl package of earlier 8.x releases, and opensearch-py's.
_DSL_MODULES = ("elasticsearch.dsl", "elasticsearch_dsl", "opensearchpy")


def _dsl_library(cls: type) -> str | None:
    """Which DSL package ``cls`` is a Document of (one of ``_DSL_MODULES``), or None."""
    for klass in cls.__mro__:
        module = klass.__module__
        if klass.__name__ in ("Document", "AsyncDocument"):
            for lib in _DSL_MODULES:
                if module == lib or module.startswith(lib + "."):
                    return lib
    return None


def _metadata_fields(lib: str) -> dict[str, Any]:
    # The package is loaded already: the class being defined derives from its Document.
    dsl = sys.modules[lib]
    return {
        "schema_version": dsl.Keyword(),
        "created_at": dsl.Date(),
        "updated_at": dsl.Date(),
        "migrated_from_version": dsl.Keyword(),
        "migration_timestamp": dsl.Date(),
    }


class VersionedDocument:
    """Mixin for ``Document`` classes of ``elasticsearch.dsl``, ``elasticsearch_dsl`` or ``opensearchpy``.

    Put it *before* ``Document`` in the bases. Class attributes:

    - ``__schema_version__``: the version this class describes (required on concrete classes);
    - ``__schema_unversioned__``: the version assumed for stored documents without one;
    - ``__upgrade_on_read__``: when True, documents loaded through ``get``/``search``
      (``from_es``) are upgraded to the latest version as they are read.

    ``@upgrades(...)`` functions in the class body (and in its versioned bases) form the class's
    :class:`Upgrades` graph, ``cls.__upgrades__``.
    """

    __schema_version__: ClassVar[str | SchemaVersion | None] = None
    __schema_unversioned__: ClassVar[str | SchemaVersion | None] = None
    __upgrade_on_read__: ClassVar[bool] = False
    __upgrades__: ClassVar[Upgrades | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        lib = _dsl_library(cls)
        if lib is None:
            # An intermediate mixin of the user's own; the DSL class that uses it is checked.
            return
        mro = cls.__mro__
        dsl_base = next(
            k
            for k in mro
            if k.__name__ in ("Document", "AsyncDocument") and k.__module__.startswith(lib)
        )
        if mro.index(VersionedDocument) > mro.index(dsl_base):
            raise TypeError(
                f"{cls.__name__}: put VersionedDocument before {dsl_base.__name__} in the bases "
                f"(class {cls.__name__}(VersionedDocument, {dsl_base.__name__})), or save() will "
                "not stamp the version fields."
            )
        mapping = cls._doc_type.mapping  # type: ignore[attr-defined]
        for name, field in _metadata_fields(lib).items():
            if name not in mapping:
                mapping.field(name, field)
        latest = cls.__dict__.get("__schema_version__", None)
        inherited = [
            step
            for base in reversed(mro[1:])
            if isinstance(base.__dict__.get("__upgrades__"), Upgrades)
            for step in base.__dict__["__upgrades__"].steps
        ]
        own = [value for value in cls.__dict__.values() if isinstance(value, UpgradeStep)]
        if latest is None:
            latest = cls.__schema_version__
        if latest is None:
            if own:
                raise TypeError(
                    f"{cls.__name__} registers upgrade steps but has no __schema_version__; "
                    "set it to the version this class describes, e.g. __schema_version__ = '2.0'."
                )
            return
        graph = Upgrades(
            cls.__name__,
            latest,
            unversioned=cls.__schema_unversioned__,
            field=VERSION_FIELD,
        )
        for step in (*inherited, *own):
            graph.add(step)
        cls.__upgrades__ = graph

    # -- stamping -------------------------------------------------------------------------------

    @classmethod
    def upgrade_graph(cls) -> Upgrades:
        """This class's :class:`Upgrades` (raises when the class declares no version)."""
        graph = cls.__dict__.get("__upgrades__") or cls.__upgrades__
        if graph is None:
            raise SchemaError(
                f"{cls.__name__} declares no __schema_version__.",
                hint="Set __schema_version__ = '1.0' (the version the class describes).",
            )
        return graph

    def stamp(self, now: datetime | None = None) -> None:
        """Set ``schema_version``, ``updated_at`` and (first time) ``created_at``. save() calls it."""
        moment = now or _now()
        this = cast(Any, self)
        if not this.created_at:
            this.created_at = moment
        this.updated_at = moment
        this.schema_version = str(type(self).upgrade_graph().latest)

    def save(self, *args: Any, **kwargs: Any) -> Any:
        """Stamp the version fields, then the DSL's save (sync or async: returns what it returns)."""
        self.stamp()
        return cast(Any, super()).save(*args, **kwargs)

    def update(self, *args: Any, **fields: Any) -> Any:
        """The DSL's partial update; field updates also set ``updated_at``."""
        if not fields.get("script") and not fields.get("script_id"):
            meta_args = {
                "using", "index", "detect_noop", "doc_as_upsert", "refresh", "retry_on_conflict",
                "scripted_upsert", "upsert", "return_doc_meta", "if_seq_no", "if_primary_term",
            }  # fmt: skip
            if any(name not in meta_args for name in fields):
                fields.setdefault("updated_at", _now())
        return cast(Any, super()).update(*args, **fields)

    @classmethod
    def _upgrade_hit(cls, hit: Any) -> Any:
        if cls.__upgrade_on_read__ and isinstance(hit, Mapping) and "_source" in hit:
            graph = cls.upgrade_graph()
            hit = dict(hit)
            hit["_source"] = graph.migrate(hit["_source"], doc_id=hit.get("_id"))
        return hit

    @classmethod
    def from_es(cls, hit: Any, *args: Any, **kwargs: Any) -> Any:
        """elasticsearch(_)dsl's loader; upgrades ``_source`` first when ``__upgrade_on_read__``."""
        return cast(Any, super()).from_es(cls._upgrade_hit(hit), *args, **kwargs)

    @classmethod
    def from_opensearch(cls, hit: Any, *args: Any, **kwargs: Any) -> Any:
        """opensearchpy's loader; upgrades ``_source`` first when ``__upgrade_on_read__``."""
        return cast(Any, super()).from_opensearch(cls._upgrade_hit(hit), *args, **kwargs)


D = TypeVar("D", bound=VersionedDocument)


@overload
def migrate_to_latest(doc: D, upgrades: None = None, *, now: datetime | None = None) -> D: ...


@overload
def migrate_to_latest(
    doc: Mapping[str, Any],
    upgrades: Upgrades | type[VersionedDocument],
    *,
    now: datetime | None = None,
) -> dict[str, Any]: ...


def migrate_to_latest(
    doc: Any,
    upgrades: Upgrades | type[VersionedDocument] | None = None,
    *,
    now: datetime | None = None,
) -> Any:
    """Upgrade a document to the latest schema version of its type.

    - ``migrate_to_latest(post)`` with a :class:`VersionedDocument` instance returns a new
      instance of the same class (same ``meta``: id, index, seq_no...) at the latest version.
    - ``migrate_to_latest(source, BlogPost)`` or ``migrate_to_latest(source, graph)`` with a
      ``_source`` dict returns a new dict.

    Pure: no I/O, the input is not modified; call it from sync or async code alike.
    """
    if isinstance(doc, VersionedDocument):
        graph = (
            upgrades.upgrade_graph()
            if isinstance(upgrades, type)
            else upgrades or type(doc).upgrade_graph()
        )
        this = cast(Any, doc)
        meta = this.meta.to_dict()
        source = this.to_dict(skip_empty=False)
        if not graph.needs_upgrade(source):
            return doc
        upgraded = graph.migrate(source, now=now, doc_id=meta.get("id"))
        return cast(Any, type(doc))(meta=meta, **upgraded)
    if not isinstance(doc, Mapping):
        raise SchemaError(
            f"migrate_to_latest takes a versioned Document or a _source dict, not {type(doc).__name__}."
        )
    if upgrades is None:
        raise SchemaError(
            "migrate_to_latest(source) needs to know the document type for a plain dict.",
            hint="Pass it: migrate_to_latest(source, BlogPost) or migrate_to_latest(source, graph).",
        )
    graph = upgrades.upgrade_graph() if isinstance(upgrades, type) else upgrades
    return graph.migrate(doc, now=now)
