"""The Document DSLs installed in this environment, for tests that declare Document classes.

The main environment has ``elasticsearch.dsl`` (elasticsearch 9.x) and ``opensearchpy`` 3.x;
the older-client one (constraints-oldclients.txt) the separate ``elasticsearch_dsl`` 8.x package
and ``opensearchpy`` 2.x. ``es_dsl`` is whichever Elasticsearch DSL is here (typed as
``elasticsearch.dsl``, the one the type checker sees).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import opensearchpy


def _installed(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


if TYPE_CHECKING:
    from elasticsearch import dsl as es_dsl
else:
    es_dsl = _installed("elasticsearch.dsl") or importlib.import_module("elasticsearch_dsl")


@dataclass(frozen=True)
class Flavour:
    """One DSL package: its ``Document``/``AsyncDocument`` and field classes."""

    name: str  # the package, e.g. "elasticsearch_dsl"
    module: Any
    document: Any
    async_document: Any
    #: The classmethod that loads a search hit: ``from_es`` or ``from_opensearch``.
    loader: str

    def __str__(self) -> str:
        return self.name


def flavours() -> list[Flavour]:
    found = []
    for name in ("elasticsearch.dsl", "elasticsearch_dsl"):
        module = _installed(name)
        if module is not None:
            found.append(Flavour(name, module, module.Document, module.AsyncDocument, "from_es"))
    async_module = importlib.import_module("opensearchpy._async.helpers.document")
    found.append(
        Flavour(
            "opensearchpy",
            opensearchpy,
            opensearchpy.Document,
            async_module.AsyncDocument,
            "from_opensearch",
        )
    )
    return found


FLAVOURS = flavours()

__all__ = ["FLAVOURS", "Flavour", "es_dsl", "flavours"]
