"""Turn either client's exceptions into esmigrate's exception tree, with the server's reason."""

from __future__ import annotations

from typing import Any

import elastic_transport
import elasticsearch
import opensearchpy

from esmigrate.exceptions import (
    AuthenticationError,
    BlockedError,
    ClusterError,
    ClusterUnavailable,
    ConflictError,
    NotFoundError,
    RequestError,
)


def server_reason(body: Any) -> tuple[str | None, str | None]:
    """(error type, reason) from an error body, preferring the first root cause.

    The root cause is what a user can act on ("mapper [title] cannot be changed from type [text]
    to [keyword]"); the top-level error is often a wrapper.
    """
    if not isinstance(body, dict):
        return None, (str(body) if body else None)
    error = body.get("error")
    if isinstance(error, str):
        return None, error
    if not isinstance(error, dict):
        return None, None
    causes = error.get("root_cause") or []
    cause = causes[0] if causes and isinstance(causes[0], dict) else error
    etype = cause.get("type") or error.get("type")
    reason = cause.get("reason") or error.get("reason")
    caused_by = error.get("caused_by")
    if (
        isinstance(caused_by, dict)
        and caused_by.get("reason")
        and caused_by.get("reason") != reason
    ):
        reason = f"{reason}: {caused_by['reason']}" if reason else caused_by["reason"]
    return etype, reason


def api_error(status: int, body: Any, method: str, path: str, where: str) -> ClusterError:
    """The esmigrate exception for an HTTP error answer."""
    etype, reason = server_reason(body)
    what = f"{method} {path}"
    if status == 401:
        return AuthenticationError(
            f"The cluster at {where} refused the credentials (401) for {what}.",
            status=status,
            hint="Check --username/--password, ESMIGRATE_API_KEY or ESMIGRATE_BEARER_TOKEN.",
        )
    if status == 403 and etype != "cluster_block_exception":
        return AuthenticationError(
            f"The cluster at {where} denied {what} (403): {reason or 'forbidden'}.",
            status=status,
            hint="The user needs the privileges for this operation, or the index is write-blocked.",
        )
    detail = f"{etype}: {reason}" if etype and reason else (reason or etype or "no reason given")
    message = f"{what} failed with {status}: {detail}"
    cls: type[RequestError] = RequestError
    if status == 404:
        cls = NotFoundError
    elif etype == "cluster_block_exception":
        cls = BlockedError
    elif status == 409:
        cls = ConflictError
    return cls(message, status=status, error_type=etype, reason=reason, body=body)


def refused(exc: BaseException) -> bool:
    """Whether a client exception is a connection error without an answer (refused, reset):
    one the clients' own transports would retry. Not a timeout (the request may be running on
    the server) nor a TLS failure (it will not pass on a second try)."""
    if isinstance(
        exc,
        (
            elastic_transport.TlsError,
            opensearchpy.SSLError,
            elastic_transport.ConnectionTimeout,
            opensearchpy.ConnectionTimeout,
        ),
    ):
        return False
    return isinstance(exc, (elastic_transport.ConnectionError, opensearchpy.ConnectionError))


def translate(exc: Exception, method: str, path: str, where: str) -> ClusterError | None:
    """Map a client exception to ours; None when it is not a client exception."""
    # Transport-level failures (no HTTP answer).
    if isinstance(exc, (elastic_transport.TlsError, opensearchpy.SSLError)):
        return ClusterUnavailable(
            f"TLS handshake with {where} failed: {_first_line(exc)}.",
            hint="Pass the cluster's CA with --ca-certs (ESMIGRATE_CA_CERTS), or --insecure for a dev cluster.",
        )
    if isinstance(exc, (elastic_transport.ConnectionTimeout, opensearchpy.ConnectionTimeout)):
        return ClusterUnavailable(
            f"The cluster at {where} did not answer {method} {path} in time.",
            hint="Check that it is up and not overloaded, or raise --timeout.",
        )
    if isinstance(exc, (elastic_transport.ConnectionError, opensearchpy.ConnectionError)):
        return ClusterUnavailable(
            f"Cannot connect to the cluster at {where}.",
            hint="Check the URL (--url / ESMIGRATE_URL) and that the cluster is running; "
            "`esmigrate dev-server start` runs a local one.",
        )
    # HTTP answers with an error status.
    if isinstance(exc, elasticsearch.ApiError):
        return api_error(exc.meta.status, exc.body, method, path, where)
    if isinstance(exc, opensearchpy.TransportError) and isinstance(exc.status_code, int):
        return api_error(exc.status_code, exc.info, method, path, where)
    if isinstance(exc, (elastic_transport.TransportError, opensearchpy.TransportError)):
        return ClusterUnavailable(f"Talking to {where} failed: {_first_line(exc)}.")
    return None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
