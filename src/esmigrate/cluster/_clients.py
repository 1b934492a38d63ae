"""The one place that loads a client library.

esmigrate installs without either client, so that it fits beside an application pinned to
``elasticsearch`` 8 or ``opensearch-py`` 2: ``pip install 'esmigrate[opensearch]'``,
``'esmigrate[elasticsearch]'`` or ``'esmigrate[all]'`` (``'esmigrate[aws]'`` adds SigV4 signing).
Each client has a module of its own here (``_opensearch``, ``_elasticsearch``, ``_aws``) that
imports its library at the top; this module imports those modules on first use, so ``import
esmigrate`` loads no client and a missing one is a :class:`~esmigrate.exceptions.MissingClient`
naming the extra to install.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from esmigrate.exceptions import ClusterError, ConfigError, MissingClient

if TYPE_CHECKING:
    from esmigrate.config import ConnectionSettings

Library = Literal["opensearch", "elasticsearch", "aws"]

# library -> (esmigrate module, the import it needs, the pip package, the extra to install)
_LIBRARIES: dict[str, tuple[str, str, str, str]] = {
    "opensearch": (
        "esmigrate.cluster._opensearch",
        "opensearchpy",
        "opensearch-py",
        "esmigrate[opensearch]",
    ),
    "elasticsearch": (
        "esmigrate.cluster._elasticsearch",
        "elasticsearch",
        "elasticsearch",
        "esmigrate[elasticsearch]",
    ),
    "aws": ("esmigrate.cluster._aws", "botocore", "botocore", "esmigrate[aws]"),
}


class ClientAdapter(Protocol):
    """One client library's way of sending esmigrate's requests (see ``_opensearch``)."""

    #: "opensearch" or "elasticsearch": the engine this client talks to.
    engine: str
    #: The library and its version, for messages ("opensearch-py 2.8.0").
    library: str
    #: The library's own client object.
    raw: Any

    def send(self, method: str, url: str, headers: Mapping[str, str], body: Any) -> Any:
        """One request; the decoded body. Raises the library's exceptions."""
        ...

    def info(self, where: str) -> dict[str, Any]:
        """``GET /``, even from a server of the other engine (to tell which it is)."""
        ...

    def error(self, exc: Exception, method: str, path: str, where: str) -> ClusterError | None:
        """esmigrate's error for one of the library's exceptions; None for anything else."""
        ...

    def refused(self, exc: BaseException) -> bool:
        """Whether ``exc`` says no connection could be made (refused, no such host), so the
        request never left: not a connection lost after sending (the server may have applied
        it), not a timeout (the request may be running), not a TLS failure (a second try fails
        too)."""
        ...

    def dropped(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a connection error without an answer, made or not (refused,
        reset, closed): what a read may be sent again after. Not a timeout, not TLS."""
        ...

    @property
    def owned(self) -> bool:
        """Whether esmigrate built the client (an application's own stays as it was set up)."""
        ...

    def close(self) -> None:
        """Close the client, unless it is an application's own (that one stays open)."""
        ...


def installed(library: Library) -> bool:
    return importlib.util.find_spec(_LIBRARIES[library][1]) is not None


def load(library: Library) -> ModuleType:
    """The esmigrate module for ``library``; raises MissingClient when it is not installed."""
    module, needs, package, extra = _LIBRARIES[library]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is None or exc.name.split(".")[0] != needs:
            raise
        what = {
            "opensearch": "OpenSearch",
            "elasticsearch": "Elasticsearch",
            "aws": "AWS SigV4 signing",
        }[library]
        raise MissingClient(
            f"{what} needs the {package} package, which is not installed.",
            library=package,
            extra=extra,
        ) from None


def build(
    library: Literal["opensearch", "elasticsearch"], settings: ConnectionSettings
) -> ClientAdapter:
    """A new client of ``library`` for ``settings``."""
    adapter: ClientAdapter = load(library).build(settings)
    return adapter


def probe_library(settings: ConnectionSettings) -> Literal["opensearch", "elasticsearch"]:
    """The client to ask the server who it is: the one the settings imply, else an installed one.

    opensearch-py is preferred: it asks any server without insisting on a product header.
    """
    if settings.cloud_id is not None:
        return "elasticsearch"
    if settings.aws_sigv4:
        return "opensearch"
    if installed("opensearch") or not installed("elasticsearch"):
        return "opensearch"
    return "elasticsearch"


def wrap(client: Any) -> ClientAdapter:
    """A :class:`ClientAdapter` around an application's own client (never closed by esmigrate)."""
    module = type(client).__module__.split(".")[0]
    library: Library
    if module == "opensearchpy":
        library = "opensearch"
    elif module == "elasticsearch":
        library = "elasticsearch"
    else:
        raise ConfigError(
            f"Cannot use a {type(client).__module__}.{type(client).__name__} as the cluster "
            "client.",
            hint="Pass an opensearchpy.OpenSearch or elasticsearch.Elasticsearch client (the "
            "synchronous one).",
        )
    adapter: ClientAdapter = load(library).wrap(client)
    return adapter
