"""esmigrate's errors for what a cluster answered (or did not), with the server's reason.

Each client module (``_opensearch``, ``_elasticsearch``) sorts its library's exceptions into these.
"""

from __future__ import annotations

from typing import Any

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
    if "error" not in body and isinstance(body.get("message"), str):
        return None, body["message"]  # AWS's own answers (a bad signature, a denied action)
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


#: Errors a server task ends with when a node it read from or wrote through left the cluster
#: (a primary failing over, a node restarting): its search context or its shard copy is gone.
#: Nothing is wrong with the request; started again once the shards are assigned, it succeeds.
_LOST_WITH_NODE = frozenset(
    {
        "search_context_missing_exception",
        "no_shard_available_action_exception",
        "shard_not_found_exception",
        "illegal_index_shard_state_exception",
        "index_shard_closed_exception",
        "primary_missing_action_exception",
        "unavailable_shards_exception",
        "node_closed_exception",
        "node_disconnected_exception",
        "node_not_connected_exception",
        "connect_transport_exception",
        "send_request_transport_exception",
    }
)
#: Wrappers around the cause that matters (a search phase failing on every shard).
_WRAPPERS = frozenset({"search_phase_execution_exception", "remote_transport_exception"})


def lost_with_node(error: Any) -> bool:
    """Whether a task's ``error`` says its work was lost with a node (see ``_LOST_WITH_NODE``):
    every error type in it, apart from wrappers, is one of those, and there is at least one."""
    types: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            kind = value.get("type")
            if isinstance(kind, str):
                types.add(kind)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(error)
    causes = types - _WRAPPERS
    return bool(causes) and causes <= _LOST_WITH_NODE


def partial_results(what: str, result: Any) -> RequestError | None:
    """The error for a search or count answered with 200 but failed on some shards (a copy
    lost mid-search, a node leaving): a listing or a count missing a shard is wrong, and a
    scan that took it for an empty range would skip documents. ``None`` when it is whole.
    Status 503: a read that may be sent again (:data:`~esmigrate.cluster._retry.READS`)."""
    shards = result.get("_shards") if isinstance(result, dict) else None
    if not isinstance(shards, dict) or not int(shards.get("failed") or 0):
        return None
    failure = (shards.get("failures") or [{}])[0].get("reason") or {}
    reason = failure.get("reason") if isinstance(failure, dict) else str(failure)
    return RequestError(
        f"A search of {what} failed on {shards['failed']} of {shards.get('total')} shards: "
        f"{reason}",
        status=503,
        error_type=failure.get("type") if isinstance(failure, dict) else None,
        reason=reason,
        body=result,
    )


def api_error(status: int, body: Any, method: str, path: str, where: str) -> ClusterError:
    """The esmigrate exception for an HTTP error answer."""
    etype, reason = server_reason(body)
    what = f"{method} {path}"
    if status == 401:
        return AuthenticationError(
            f"The cluster at {where} refused the credentials (401) for {what}.",
            status=status,
            hint="Check --username/--password, ESMIGRATE_API_KEY, ESMIGRATE_BEARER_TOKEN or, "
            "with --aws-sigv4, the AWS credentials.",
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


#: Exceptions that say a connection was never made, so the request never left: urllib3's
#: (under both clients' transports) and the socket's own.
_NOT_CONNECTED = frozenset({"NewConnectionError", "NameResolutionError", "ConnectionRefusedError"})


def nothing_sent(exc: BaseException) -> bool:
    """Whether ``exc`` (a client's connection error) says the connection was never made, so
    nothing reached the server and sending the request again cannot apply it twice. A connection
    reset or closed after the request went out is not such a case: the server may have applied
    it (it only lost the answer)."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if any(cls.__name__ in _NOT_CONNECTED for cls in type(item).__mro__):
            return True
        # opensearch-py keeps the cause in .info, elastic-transport in .errors.
        todo += [item.__cause__, item.__context__, getattr(item, "info", None)]
        todo += list(getattr(item, "errors", None) or ())
    return False


def unreachable(
    kind: str, exc: Exception, method: str, path: str, where: str
) -> ClusterUnavailable:
    """The error for a request that got no HTTP answer: ``kind`` is "tls", "timeout",
    "connection" (none could be made), "lost" (the connection dropped before the answer) or
    "transport" (anything else in the transport)."""
    if kind == "tls":
        return ClusterUnavailable(
            f"TLS handshake with {where} failed: {_first_line(exc)}.",
            hint="Pass the cluster's CA with --ca-certs (ESMIGRATE_CA_CERTS) or pin its "
            "certificate with --ssl-assert-fingerprint, or --insecure for a dev cluster.",
        )
    if kind == "timeout":
        return ClusterUnavailable(
            f"The cluster at {where} did not answer {method} {path} in time.",
            hint="Check that it is up and not overloaded, or raise --timeout.",
        )
    if kind == "lost":
        return ClusterUnavailable(
            f"The connection to {where} was lost before the cluster answered {method} {path}; "
            "the request may or may not have been applied.",
            hint="Check the network and the cluster (a node restarting, a proxy or load "
            "balancer dropping connections), then run the command again: esmigrate resumes, "
            "and recognises what was applied.",
        )
    if kind == "connection":
        return ClusterUnavailable(
            f"Cannot connect to the cluster at {where}.",
            hint="Check the URL (--url / ESMIGRATE_URL) and that the cluster is running; "
            "`esmigrate dev-server start` runs a local one.",
        )
    return ClusterUnavailable(f"Talking to {where} failed: {_first_line(exc)}.")


def gone_away(where: str) -> ClusterUnavailable:
    """The error for a request no connection could be made for, to a cluster that answered
    before (when esmigrate connected): it stopped in the middle of the command."""
    return ClusterUnavailable(
        f"Cannot connect to the cluster at {where} any more: it answered when esmigrate "
        "connected and now refuses connections (a node restarting or stopped?).",
        hint="Once it answers again, run the command again: esmigrate resumes where it "
        "stopped (a migration from its checkpoint) and lifts a write block it left.",
    )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
