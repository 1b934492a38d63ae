"""The one exception tree of esmigrate, and the CLI's exit codes.

Every error a user can cause or meet derives from :class:`EsmigrateError`; the CLI prints those as
one paragraph (problem, then the fix), never as a stack trace, and exits with the error's
``exit_code`` (:class:`ExitCode`; 1 unless noted)::

    EsmigrateError
     ├── ConfigError              bad config file, flag or environment variable
     │    └── MissingClient       the client library for the engine is not installed (names the extra)
     ├── DevServerError           the embedded OpenSearch node could not start / stop
     ├── ClusterError             anything that came back from (or failed to reach) a cluster
     │    ├── ClusterUnavailable  connection refused, DNS, timeout, TLS handshake
     │    ├── AuthenticationError 401 / 403                                             exit 4
     │    ├── UnsupportedEngine   neither Elasticsearch 8/9 nor OpenSearch 2/3
     │    ├── TaskFailed          a background task (_reindex, _update_by_query) ended in error
     │    │    └── TaskLost       its work was lost with a node (restarted, or left mid-read)
     │    └── RequestError        the server rejected a request (carries status and root cause)
     │         ├── NotFoundError  404
     │         ├── ConflictError  409 (version conflict, resource exists)
     │         └── BlockedError   403 cluster_block_exception (write block, read-only disk)
     ├── RevisionError            versioned migrations (scripts, graph, history, lease)
     │    ├── ScriptError         a migration file does not import or lacks what it must define
     │    ├── RevisionGraphError  cycle, duplicate id, missing down_revision, several heads
     │    │    └── TargetError    an unknown or ambiguous target (`upgrade xyz`)
     │    ├── LeaseHeld           another runner holds the history lease                exit 5
     │    ├── LeaseLost           this runner's lease was taken over while it worked
     │    ├── RevisionFailed      a revision failed (now or earlier) and blocks the next upgrade
     │    ├── HistoryMismatch     applied scripts edited (ChecksumMismatch) or missing
     │    │    └── ChecksumMismatch
     │    ├── DowngradeNotSupported  a revision to undo has no downgrade()
     │    ├── OperationConflict   the cluster holds something an operation cannot converge to
     │    └── NoReport            `report REV`: no such revision in the history, or no timeline
     ├── MigrationError           a data migration (esmigrate.migrate) cannot start or finish
     │    ├── PreflightError      bad input found before anything was written
     │    ├── ValidationFailed    the cut-over gate found differences (aliases untouched)
     │    ├── TooManyFailures     more rejected/failed documents than --max-failures allows
     │    ├── MigrationConflict   another process changed the migration's checkpoint
     │    │    └── MigrationLocked another process runs this migration                  exit 5
     │    └── MigrationCancelled  stopped on request (Ctrl-C); resumable                exit 130
     ├── SchemaError              a schema, version or mapping input that cannot be used
     │    ├── InvalidVersion      a schema version string that is not MAJOR.MINOR[.PATCH]
     │    ├── NoUpgradePath       no chain of registered upgrade steps joins two versions
     │    └── MappingNotApplied   the engine acknowledged a mapping change it did not make
     ├── TransformError           a transformation rule (or upgrade step) failed on a document
     ├── RollbackError            rollback points, rollbacks, clean-up, automatic rollback
     │    ├── PointNotFound       no rollback point of that name in the state index
     │    ├── PointExists         a rollback point of that name exists already
     │    ├── WritesAtRisk        a rollback would drop writes made since the cut-over  exit 3
     │    └── RestoreImpossible   an index of the point is gone and no snapshot holds it
     ├── PreflightFailed          `deploy`: a pre-flight check failed; nothing changed  exit 3
 ├── OutsideWindow            `deploy --window`: not now, or it would not finish in time  exit 6
     └── DeployRolledBack         `deploy`: rolled back (a failed check, or a failed    exit 3
                              revision with --rollback-all-on-failure)
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """The exit statuses of the ``esmigrate`` command: the one table (docs/cli.md,
    "Exit codes", checked against this class by a test).

    A script tells "it failed" (1) from "it ran and found a problem" (3) and "busy, try again
    later" (5) without parsing any text.
    """

    #: Done; for the inspecting verbs, nothing wrong found.
    OK = 0
    #: The command could not do what it was asked (bad input, a cluster error, a failed run).
    ERROR = 1
    #: The command line is wrong: unknown option, missing argument (click's own status).
    USAGE = 2
    #: The command ran and found a problem: drift (``check``), history problems (``validate``),
    #: a failed pre-flight check, an unhealthy alias (``monitor``, ``deploy``), a rollback
    #: refused because it would drop writes, no dev-server running (``dev-server status``).
    PROBLEM = 3
    #: The cluster refused the credentials (401) or the permission (403).
    AUTH = 4
    #: Another runner holds the lease (or the migration): nothing was done; retry later.
    BUSY = 5
    #: Not now: outside the maintenance window (``deploy --window``), or the migration would
    #: not finish inside it by the plan's estimate. Nothing was done; the error says when the
    #: next window opens.
    WINDOW = 6
    #: An unexpected error inside esmigrate (a bug): a short message; ``--debug`` shows the trace.
    INTERNAL = 70
    #: Stopped by Ctrl-C (at a safe point): running the command again resumes.
    INTERRUPTED = 130


class EsmigrateError(Exception):
    """Root of all esmigrate errors.

    ``hint`` says how to fix the problem; the CLI prints it after the message and exits with
    ``exit_code``.
    """

    #: The CLI's exit status for this error (:class:`ExitCode`): 1, except where a script may
    #: want to tell it apart.
    exit_code: int = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def details(self) -> dict[str, Any]:
        """The structured fields of the error (everything but ``message`` and ``hint``): what
        ``--json`` prints beside them, e.g. a ``TooManyFailures``' counts or a
        ``PreflightError``'s ``problem``."""
        return {k: v for k, v in vars(self).items() if k not in ("message", "hint")}

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n{self.hint}"
        return self.message


class ConfigError(EsmigrateError):
    """The configuration (file, flags, environment) is invalid."""


class MissingClient(ConfigError):
    """The client library for the cluster's engine is not installed.

    esmigrate installs without either client so that it fits beside an application's own pin;
    ``library`` is the missing module, ``extra`` what to install (``esmigrate[opensearch]``).
    """

    def __init__(self, message: str, *, library: str, extra: str) -> None:
        super().__init__(message, hint=f"Install it: pip install '{extra}'.")
        self.library = library
        self.extra = extra


class DevServerError(EsmigrateError):
    """The embedded development node could not be started, found or stopped."""


class ClusterError(EsmigrateError):
    """Base for errors that come from talking to a cluster."""


class ClusterUnavailable(ClusterError):
    """The cluster could not be reached (refused, DNS, timeout, TLS)."""


class AuthenticationError(ClusterError):
    """The cluster refused the credentials (401) or the permission (403)."""

    # Scripts tell "fix the credentials" apart from a failed migration without parsing text.
    exit_code = ExitCode.AUTH

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class UnsupportedEngine(ClusterError):
    """The server is not an engine/version esmigrate supports."""


class RequestError(ClusterError):
    """The server answered a request with an error.

    Attributes carry the server's own words: ``status``, ``error_type`` (e.g.
    ``mapper_parsing_exception``), ``reason`` (the root cause's reason) and the raw ``body``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error_type: str | None = None,
        reason: str | None = None,
        body: Any = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.error_type = error_type
        self.reason = reason
        self.body = body


class NotFoundError(RequestError):
    """404: index, alias, document or endpoint not found."""


class ConflictError(RequestError):
    """409: version conflict or the resource already exists."""


class BlockedError(RequestError):
    """403 ``cluster_block_exception``: the index (or cluster) refuses writes for now."""


class TaskFailed(ClusterError):
    """A background task ended with an error or with per-document failures."""

    def __init__(
        self, message: str, *, task_id: str, response: Any = None, error: Any = None
    ) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.response = response
        self.error = error


class TaskLost(TaskFailed):
    """A background task's work was lost with a node: the task vanished before it completed
    (``GET _tasks/ID`` no longer knows it: the node that ran it restarted or left the cluster),
    or it failed because a node it read from left (its search context or shard is gone). Its
    work is to be started again; nothing is wrong with the request."""

    def __init__(self, message: str, *, task_id: str, hint: str | None = None) -> None:
        super().__init__(message, task_id=task_id)
        self.hint = hint


class RevisionError(EsmigrateError):
    """Base for the versioned-migration layer (scripts, revision graph, history, lease)."""


class ScriptError(RevisionError):
    """A migration script cannot be loaded or does not define what it must."""

    def __init__(self, message: str, *, path: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class RevisionGraphError(RevisionError):
    """The revisions do not form a usable graph (cycle, duplicate, dangling link, heads)."""

    def __init__(
        self, message: str, *, paths: tuple[str, ...] = (), hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.paths = paths


class TargetError(RevisionGraphError):
    """A target (``head``, a revision id or prefix, ``-1``...) names nothing usable."""


class LeaseHeld(RevisionError):
    """Another runner holds the lease on the history index and did not release it in time."""

    exit_code = ExitCode.BUSY

    def __init__(
        self,
        message: str,
        *,
        owner: str,
        host: str | None,
        pid: int | None,
        expires_at: str | None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.owner = owner
        self.host = host
        self.pid = pid
        self.expires_at = expires_at


class LeaseLost(RevisionError):
    """This runner's lease expired or was taken over; it stopped before the next operation."""


class RevisionFailed(RevisionError):
    """A revision failed; the history records it as failed until ``repair``."""

    def __init__(
        self,
        message: str,
        *,
        revision: str,
        reason: str | None = None,
        path: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.revision = revision
        self.reason = reason
        self.path = path


class HistoryMismatch(RevisionError):
    """The history disagrees with the scripts (edited or missing files).

    ``problems`` holds one dict per revision: ``revision``, ``problem`` and details.
    """

    def __init__(
        self, message: str, *, problems: list[dict[str, Any]], hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems


class ChecksumMismatch(HistoryMismatch):
    """An applied script was edited after it ran."""


class DowngradeNotSupported(RevisionError):
    """A revision that would have to be undone has no ``downgrade(op)``."""

    def __init__(self, message: str, *, revision: str, path: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.revision = revision
        self.path = path


class OperationConflict(RevisionError):
    """The cluster holds something an operation cannot converge to (e.g. a different mapping)."""


class NoReport(RevisionError):
    """``esmigrate report REV``: the history has no such revision, or the revision recorded no
    migration timeline (it ran no ``op.migrate``, or ran before esmigrate recorded one)."""

    def __init__(self, message: str, *, revision: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.revision = revision


class MigrationError(EsmigrateError):
    """A data migration (:mod:`esmigrate.migrate`) could not start or finish."""


class PreflightError(MigrationError):
    """Bad input detected before anything was written (missing source, red cluster, ...).

    ``problem`` is a short machine-readable tag (``source_missing``, ``target_exists``, ...).
    """

    def __init__(self, message: str, *, problem: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problem = problem


class ValidationFailed(MigrationError):
    """The cut-over validation gate found differences; aliases were left untouched.

    ``differences`` lists what differs (one dict per finding: ``check``, and details).
    """

    def __init__(
        self, message: str, *, differences: list[dict[str, Any]], hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.differences = differences


class TooManyFailures(MigrationError):
    """More documents were rejected or failed to transform than ``max_failures`` allows.

    The failed documents are in ``dead_letter_index``; ``samples`` holds a few of them.
    """

    def __init__(
        self,
        message: str,
        *,
        failures: int,
        max_failures: int,
        dead_letter_index: str,
        samples: list[dict[str, Any]],
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.failures = failures
        self.max_failures = max_failures
        self.dead_letter_index = dead_letter_index
        self.samples = samples


class MigrationConflict(MigrationError):
    """Another process changed the migration's checkpoint document concurrently."""


class MigrationLocked(MigrationConflict):
    """Another process holds the lease of this migration (a run in progress, or a dead one whose
    lease has not lapsed yet); ``owner``/``host``/``pid``/``expires_at`` name it."""

    exit_code = ExitCode.BUSY

    def __init__(
        self,
        message: str,
        *,
        owner: str,
        host: str | None,
        pid: int | None,
        expires_at: float | None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.owner = owner
        self.host = host
        self.pid = pid
        self.expires_at = expires_at


class MigrationCancelled(MigrationError):
    """The migration was stopped on request; running it again resumes it."""

    exit_code = ExitCode.INTERRUPTED


class SchemaError(EsmigrateError):
    """A schema, schema version or mapping input cannot be used as given."""


class InvalidVersion(SchemaError):
    """A schema version string is not ``MAJOR.MINOR`` or ``MAJOR.MINOR.PATCH``."""

    def __init__(self, message: str, *, text: object, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.text = text


class NoUpgradePath(SchemaError):
    """No chain of registered upgrade steps leads from one schema version to another."""

    def __init__(
        self,
        message: str,
        *,
        doc_type: str,
        from_version: str,
        to_version: str,
        steps: list[tuple[str, str]],
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.doc_type = doc_type
        self.from_version = from_version
        self.to_version = to_version
        #: The registered steps, as (from, to) version strings.
        self.steps = steps


class MappingNotApplied(SchemaError):
    """The engine acknowledged a put-mapping, but the live mapping does not hold the change."""

    def __init__(
        self, message: str, *, index: str, differences: list[str], hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.index = index
        #: One line per missing change (``path: parameter old → new [class]``).
        self.differences = differences


class TransformError(EsmigrateError):
    """A transformation rule or upgrade step failed on one document.

    ``rule`` names the rule (or upgrade step), ``doc_id`` the document when known, ``cause`` the
    original exception. A migration sends such documents to its dead-letter path with these.
    """

    def __init__(
        self,
        message: str,
        *,
        rule: str,
        doc_id: str | None = None,
        cause: BaseException | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.rule = rule
        self.doc_id = doc_id
        self.cause = cause

    def to_dict(self) -> dict[str, Any]:
        """What a dead-letter record keeps: rule, document id and the error text."""
        return {
            "rule": self.rule,
            "doc_id": self.doc_id,
            "error": str(self.cause) if self.cause is not None else self.message,
            "error_type": type(self.cause).__name__ if self.cause is not None else None,
        }


class RollbackError(EsmigrateError):
    """A rollback point cannot be recorded, found, restored or rolled back to."""


class PointNotFound(RollbackError):
    """No rollback point called ``name`` in the state index."""

    def __init__(self, message: str, *, name: str, known: list[str], hint: str | None = None):
        super().__init__(message, hint=hint)
        self.name = name
        self.known = known


class PointExists(RollbackError):
    """A rollback point called ``name`` exists already (names are unique)."""

    def __init__(self, message: str, *, name: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.name = name


class WritesAtRisk(RollbackError):
    """Rolling back would drop operations made since the cut-over; nothing was changed.

    ``at_risk`` maps each index that would leave the aliases to its operation count.
    """

    exit_code = ExitCode.PROBLEM

    def __init__(
        self, message: str, *, point: str, at_risk: dict[str, int], hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.point = point
        self.at_risk = at_risk
        self.total = sum(at_risk.values())


class RestoreImpossible(RollbackError):
    """An index of the rollback point no longer exists and no snapshot of the point holds it."""

    def __init__(self, message: str, *, indices: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.indices = indices


class PreflightFailed(EsmigrateError):
    """A pre-flight check failed; nothing was changed. ``checks`` lists them all."""

    exit_code = ExitCode.PROBLEM

    def __init__(
        self, message: str, *, checks: list[dict[str, Any]], hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.checks = checks


class DeployRolledBack(EsmigrateError):
    """The deploy rolled aliases back: a health check failed after the migration, or (with
    ``--rollback-all-on-failure``) a revision failed and the earlier cut-overs were taken back.
    ``log`` is the deployment log."""

    exit_code = ExitCode.PROBLEM

    def __init__(self, message: str, *, log: dict[str, Any], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.log = log


class OutsideWindow(EsmigrateError):
    """``deploy --window``: the deploy was refused before anything started, because it is
    outside every maintenance window or because the plan's estimate would not fit in the time
    left of the window. ``next_opening`` is when the next window opens (ISO 8601, UTC);
    ``estimate_seconds`` the estimated duration, when one was made."""

    exit_code = ExitCode.WINDOW

    def __init__(
        self,
        message: str,
        *,
        window: str,
        next_opening: str,
        estimate_seconds: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.window = window
        self.next_opening = next_opening
        self.estimate_seconds = estimate_seconds
