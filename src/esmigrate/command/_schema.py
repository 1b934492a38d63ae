"""Schemas and transformations: ``check``, ``preview``, ``schema-versions``, and loading the
project's modules (rule sets, transforms, Document classes) by ``module:attribute``."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any, cast

from esmigrate.command._base import open_cluster
from esmigrate.config import Config
from esmigrate.exceptions import ConfigError
from esmigrate.schema import VersionCounts, VersionedDocument, detect_schema_versions, index_name_of
from esmigrate.schema.check import CheckReport, check_documents
from esmigrate.transform import Transform
from esmigrate.transform.preview import PreviewReport
from esmigrate.transform.preview import preview as run_preview


def project_module(config: Config, module_name: str) -> ModuleType:
    """Import a module of the project (its root is put on ``sys.path`` first, as Alembic does)."""

    root = str(config.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"Cannot import {module_name!r}: {exc}.",
            hint=f"Check the module name; it is imported with {root} on the path.",
        ) from None


def load_object(config: Config, reference: str) -> object:
    """The object a ``module:attribute`` reference names (``myapp.rules:post_rules``)."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ConfigError(
            f"Invalid reference {reference!r}.",
            hint="Use module:attribute, e.g. myapp.migrations.rules:v3_rules.",
        )
    obj: object = project_module(config, module_name)
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                f"{module_name!r} has no attribute {attribute!r}.",
                hint="Name a RuleSet, a doc -> doc function, or a versioned Document class.",
            ) from None
    return obj


def load_transform(config: Config, reference: str) -> Transform:
    """A rule set or ``doc -> doc`` callable from a ``module:attribute`` reference.

    A :class:`~esmigrate.schema.VersionedDocument` class stands for its upgrade graph.
    """
    obj = load_object(config, reference)
    if isinstance(obj, type) and issubclass(obj, VersionedDocument):
        return obj.upgrade_graph()
    if not callable(obj):
        raise ConfigError(
            f"{reference} is a {type(obj).__name__}, not a transform.",
            hint="Name a RuleSet, a doc -> doc function, or a versioned Document class.",
        )
    # A callable of the user's: whether it maps documents to documents shows when it runs.
    return cast(Transform, obj)


def preview(
    config: Config,
    rules: str,
    index: str,
    *,
    sample: int = 10,
    query: dict[str, Any] | None = None,
    seed: int | None = None,
) -> PreviewReport:
    """Run the transform ``rules`` (``module:attribute``) on a sample of ``index``; writes nothing.

    Returns a :class:`~esmigrate.transform.preview.PreviewReport`.
    """
    transform = load_transform(config, rules)
    with open_cluster(config) as cluster:
        return run_preview(cluster, index, transform, sample=sample, query=query, seed=seed)


def schema_documents(config: Config) -> list[type]:
    """The Document classes (with an index name) in ``config.schema_modules``, in order."""
    if not config.schema_modules:
        raise ConfigError(
            "No schema modules are configured.",
            hint='Name the modules holding your Document classes: schema_modules = ["myapp.documents"] '
            "in esmigrate.toml.",
        )
    found: list[type] = []
    for module_name in config.schema_modules:
        module = project_module(config, module_name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and hasattr(value, "_doc_type")
                and index_name_of(value) is not None
                and value not in found
            ):
                found.append(value)
    if not found:
        raise ConfigError(
            "The schema modules define no Document class with an index name.",
            hint="Give each Document class `class Index: name = '...'`.",
        )
    return found


def check(config: Config) -> CheckReport:
    """Compare the Document classes of ``schema_modules`` with the live mappings.

    Returns a :class:`~esmigrate.schema.check.CheckReport`; ``report.ok`` is False when any
    index is missing or differs (the CLI exits 1 then).
    """
    documents = schema_documents(config)
    with open_cluster(config) as cluster:
        return check_documents(cluster, documents)


def schema_versions(config: Config, index: str, *, field: str = "schema_version") -> VersionCounts:
    """Documents per ``schema_version`` in ``index`` (a :class:`~esmigrate.schema.VersionCounts`)."""
    with open_cluster(config) as cluster:
        return detect_schema_versions(cluster, index, field=field)
