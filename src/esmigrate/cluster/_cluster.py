"""The one interface the rest of esmigrate uses to talk to a cluster.

Elasticsearch 8/9 needs the official ``elasticsearch`` client (it refuses servers without the
``X-Elastic-Product`` header, which OpenSearch does not send); OpenSearch 2/3 needs ``opensearch-py``.
Both descend from the same 7.x client, so esmigrate speaks plain REST through either client's
transport and keeps the few engine differences (point-in-time endpoints, compatibility headers)
inside this module. The clients themselves are loaded on demand by ``_clients`` (esmigrate
installs without either); nothing outside ``esmigrate.cluster`` imports one.

What differs between engines and versions is decided once, when connecting, as the cluster's
:class:`Capabilities`; code asks a capability, never an engine name or version number.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import quote, urlencode

import orjson

from esmigrate.cluster import _clients
from esmigrate.cluster._errors import gone_away, lost_with_node, partial_results, server_reason
from esmigrate.cluster._request import query_value
from esmigrate.cluster._retry import READS, RetryPolicy
from esmigrate.config import DEFAULT_URL, ConnectionSettings, redact_url
from esmigrate.exceptions import (
    ClusterError,
    ClusterUnavailable,
    NotFoundError,
    RequestError,
    TaskFailed,
    TaskLost,
    UnsupportedEngine,
)

EngineName = Literal["opensearch", "elasticsearch"]

#: Major versions esmigrate is built and tested for.
SUPPORTED: dict[str, tuple[int, ...]] = {"opensearch": (2, 3), "elasticsearch": (8, 9)}


@dataclass(frozen=True)
class Engine:
    """What ``GET /`` reported."""

    name: EngineName
    version: tuple[int, int, int]
    number: str
    cluster_name: str

    @property
    def major(self) -> int:
        return self.version[0]

    def __str__(self) -> str:
        label = "OpenSearch" if self.name == "opensearch" else "Elasticsearch"
        return f"{label} {self.number}"


#: Amazon OpenSearch Serverless, which reports no version (it has no ``GET /``).
SERVERLESS = Engine("opensearch", (2, 0, 0), "Serverless", "")


PitApi = Literal["opensearch", "elasticsearch"]


@dataclass(frozen=True)
class Capabilities:
    """What the connected engine offers where Elasticsearch and OpenSearch versions differ.

    Decided once from ``GET /`` (:meth:`of`); each difference has one path in the code, chosen by
    its capability here.
    """

    #: The point-in-time API: ``"opensearch"`` (2.4+: ``POST /<index>/_search/point_in_time``,
    #: ``DELETE /_search/point_in_time``), ``"elasticsearch"`` (``POST /<index>/_pit``,
    #: ``DELETE /_pit``), or None (OpenSearch before 2.4 has none).
    point_in_time: PitApi | None
    #: The ``_shard_doc`` sort (Elasticsearch 7.12+, OpenSearch 3.3+): the tiebreaker that makes
    #: point-in-time paging exact. Without it ``_doc`` repeats sort values across shards (so
    #: ``search_after`` skips documents) and ``_id`` loads every id into the heap as fielddata,
    #: so :meth:`Cluster.scan` reads with a ``_doc``-sorted scroll instead.
    shard_doc: bool
    #: A scroll (``_reindex`` included) sliced manually on ``_id`` with ``max`` equal to the
    #: index's number of shards reads exactly shard ``id`` (the slice filter of Elasticsearch 5+
    #: and OpenSearch matches all of one shard and nothing of the others; checked on the node by
    #: tests/test_engine_capabilities.py). That lets a catch-up ``_reindex`` copy each shard
    #: from its own ``_seq_no`` checkpoint; without it one threshold covers every shard (the
    #: lowest, so nothing is missed, at the cost of copying some documents again). Serverless
    #: has no shards to address.
    slice_by_shard: bool = True

    @classmethod
    def of(cls, engine: Engine) -> Capabilities:
        if engine.name == "elasticsearch":
            return cls(point_in_time="elasticsearch", shard_doc=True)
        return cls(
            point_in_time="opensearch" if engine.version >= (2, 4, 0) else None,
            shard_doc=engine.version >= (3, 3, 0),
            slice_by_shard=engine != SERVERLESS,
        )


def parse_engine(info: Mapping[str, Any]) -> Engine:
    version = info.get("version") or {}
    number = str(version.get("number", "0.0.0"))
    name: EngineName = (
        "opensearch" if version.get("distribution") == "opensearch" else "elasticsearch"
    )
    digits = [int(p) if p.isdigit() else 0 for p in number.split("-")[0].split(".")[:3]]
    digits += [0] * (3 - len(digits))
    engine = Engine(
        name, (digits[0], digits[1], digits[2]), number, str(info.get("cluster_name", ""))
    )
    if name == "elasticsearch" and info.get("tagline") != "You Know, for Search":
        raise UnsupportedEngine(
            "The server does not identify as Elasticsearch or OpenSearch.",
            hint="esmigrate supports Elasticsearch 8/9 and OpenSearch 2/3.",
        )
    if engine.major not in SUPPORTED[name]:
        majors = "/".join(str(m) for m in SUPPORTED[name])
        raise UnsupportedEngine(
            f"{engine} is not supported.",
            hint=f"esmigrate supports {str(engine).split()[0]} {majors}.",
        )
    return engine


class Cluster:
    """A connected cluster. Create with :func:`connect` (or :meth:`from_client`); close when
    done (or use ``with``)."""

    def __init__(
        self, settings: ConnectionSettings, engine: Engine, client: _clients.ClientAdapter
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.capabilities = Capabilities.of(engine)
        self._client = client
        #: Called right before each try of a write request (see :meth:`fenced`).
        self._fence: Callable[[], None] | None = None
        #: Requests whose connection could not be made (nothing reached the server), and reads
        #: whose connection dropped, are sent again: ``max_retries`` more tries, shortly apart,
        #: on a client esmigrate built (whose own retries are off); an application's client
        #: (:meth:`from_client`) retries as it is set.
        self.retry = RetryPolicy(
            retries=settings.max_retries if client.owned else 0,
            base=0.1,
            cap=2.0,
            statuses=frozenset(),
        )
        if engine.name == "elasticsearch":
            compat = f"compatible-with={engine.major}"
            self._json_headers = {
                "accept": f"application/vnd.elasticsearch+json; {compat}",
                "content-type": f"application/vnd.elasticsearch+json; {compat}",
            }
            self._ndjson_headers = {
                "accept": f"application/vnd.elasticsearch+json; {compat}",
                "content-type": f"application/vnd.elasticsearch+x-ndjson; {compat}",
            }
        else:
            self._json_headers = {"accept": "application/json", "content-type": "application/json"}
            self._ndjson_headers = {
                "accept": "application/json",
                "content-type": "application/x-ndjson",
            }

    # -- plumbing -------------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; an application's own client (:meth:`from_client`) stays open."""
        self._client.close()

    @property
    def client(self) -> Any:
        """The client library's own client object (``opensearchpy.OpenSearch`` or
        ``elasticsearch.Elasticsearch``), for what only it offers (``esmigrate bench`` measures
        its ``helpers``); esmigrate itself sends everything through :meth:`request`."""
        return self._client.raw

    @classmethod
    def from_client(cls, client: Any) -> Cluster:
        """A :class:`Cluster` that sends through an application's configured client.

        ``client`` is an ``elasticsearch.Elasticsearch`` or ``opensearchpy.OpenSearch`` (its
        hosts, TLS, credentials and signing are used as they are); :meth:`close` leaves it open.
        Same as ``connect(client=client)``.
        """
        return connect(client=client)

    def fenced(self, check: Callable[[], None]) -> Cluster:
        """This cluster (same connection) calling ``check`` right before each try of every write
        request: when ``check`` raises (e.g. :meth:`esmigrate.state.Lease.check` once the lease
        is lost), nothing more is written through it, whichever step was about to write.

        A process paused past its lease (SIGSTOP, a long GC or VM pause) wakes up in the middle
        of a step; checking once per step leaves that step's remaining writes unguarded, and
        they would land beside the process that took over. Close the original, not the copy."""
        fenced = copy.copy(self)
        fenced._fence = check
        return fenced

    @property
    def where(self) -> str:
        return self.settings.display_url

    @property
    def client_library(self) -> str:
        """The client library and version in use, e.g. ``"opensearch-py 3.2.0"``."""
        return self._client.library

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        ndjson: bool = False,
    ) -> Any:
        """Send one REST request; returns the decoded JSON body.

        Raises the matching :class:`~esmigrate.exceptions.ClusterError` subclass with the
        server's root cause. ``body`` may be pre-encoded bytes (bulk bodies are).
        """
        headers = self._ndjson_headers if ndjson else self._json_headers
        clean = {k: query_value(v) for k, v in (params or {}).items() if v is not None}
        # The query string is built here rather than passed as `params`: the clients interpret
        # some parameter names themselves (opensearch-py takes `timeout` as its socket timeout).
        url = f"{path}?{urlencode(clean)}" if clean else path
        read = is_read(method, path)
        counts = read and path.rstrip("/").rsplit("/", 1)[-1] in ("_search", "_count")

        def again(exc: BaseException) -> bool:
            # A write whose connection dropped after it was sent may have been applied.
            return self._client.refused(exc) or (read and self._client.dropped(exc))

        fence = None if read else self._fence

        def attempt() -> Any:
            if fence is not None:
                fence()
            return self._client.send(method, url, headers, body)

        def send() -> Any:
            try:
                result = self.retry.call(attempt, retryable=again)
            except Exception as exc:
                mapped = self._client.error(exc, method, path, self.where)
                if mapped is None:
                    raise
                if (
                    isinstance(mapped, ClusterUnavailable)
                    and self.engine != SERVERLESS
                    and self._client.refused(exc)
                ):
                    # connect() made this Cluster once GET / was answered: it went away since.
                    mapped = gone_away(self.where)
                raise mapped from None
            if counts:
                # Partial results answer 200; sent again (READS), a copy that left is skipped.
                partial = partial_results(path.rsplit("/", 2)[-2] or "all indices", result)
                if partial is not None:
                    raise partial
            return result

        return READS.call(send) if read else send()

    # -- cluster ---------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/")
        return result

    def health(
        self,
        index: str | None = None,
        *,
        wait_for_status: str | None = None,
        timeout: str = "30s",
    ) -> dict[str, Any]:
        path = "/_cluster/health" + (f"/{_p(index)}" if index else "")
        result: dict[str, Any] = self.request(
            "GET", path, params={"wait_for_status": wait_for_status, "timeout": timeout}
        )
        return result

    # -- indices ---------------------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        """True when an index, alias or data stream called ``name`` exists."""
        try:
            answer = self.request("HEAD", f"/{_p(name)}")
        except NotFoundError:
            return False
        # opensearch-py answers HEAD with a bool; the elasticsearch client raises on 404.
        return answer if isinstance(answer, bool) else True

    def refresh(self, index: str) -> None:
        self.request("POST", f"/{_p(index)}/_refresh")

    def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        body = {"query": query} if query else None
        return int(self.request("POST", f"/{_p(index)}/_count", body=body)["count"])

    # -- documents -------------------------------------------------------------------------------

    def bulk(self, body: bytes, *, refresh: str | bool | None = None) -> dict[str, Any]:
        """Send a pre-encoded NDJSON bulk body. Per-item errors are in the result, not raised."""
        result: dict[str, Any] = self.request(
            "POST", "/_bulk", params={"refresh": refresh}, body=body, ndjson=True
        )
        return result

    def search(self, index: str | None, body: Mapping[str, Any], **params: Any) -> dict[str, Any]:
        path = f"/{_p(index)}/_search" if index else "/_search"
        result: dict[str, Any] = self.request("POST", path, params=params, body=dict(body))
        return result

    def msearch(
        self, searches: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]
    ) -> list[dict[str, Any]]:
        """Several ``(header, body)`` searches in one ``_msearch`` request (a header names the
        ``index`` and may set ``preference``); the responses in order. A failed search raises
        (``_msearch`` itself answers 200 and reports it inline), and so does one that failed on
        some shards (partial results)."""
        lines: list[bytes] = []
        for header, body in searches:
            lines.append(orjson.dumps(dict(header)))
            lines.append(orjson.dumps(dict(body)))
        result = self.request("POST", "/_msearch", body=b"\n".join(lines) + b"\n", ndjson=True)
        responses: list[dict[str, Any]] = result["responses"]
        for (header, _), response in zip(searches, responses, strict=True):
            if "error" in response:
                error = response["error"]
                reason = error.get("reason") if isinstance(error, dict) else str(error)
                raise RequestError(
                    f"A search of {header.get('index')} failed: {reason}",
                    status=int(response.get("status", 500)),
                    error_type=error.get("type") if isinstance(error, dict) else None,
                    reason=reason,
                    body=response,
                )
            partial = partial_results(str(header.get("index")), response)
            if partial is not None:
                raise partial
        return responses

    # -- point in time (the endpoints differ by engine: Capabilities.point_in_time) ---------------

    def open_pit(self, index: str, keep_alive: str = "5m") -> str:
        api = self._pit_api()
        if api == "opensearch":
            result = self.request(
                "POST", f"/{_p(index)}/_search/point_in_time", params={"keep_alive": keep_alive}
            )
            return str(result["pit_id"])
        result = self.request("POST", f"/{_p(index)}/_pit", params={"keep_alive": keep_alive})
        return str(result["id"])

    def close_pit(self, pit_id: str) -> None:
        api = self._pit_api()
        try:
            if api == "opensearch":
                self.request("DELETE", "/_search/point_in_time", body={"pit_id": [pit_id]})
            else:
                self.request("DELETE", "/_pit", body={"id": pit_id})
        except ClusterError as exc:
            if getattr(exc, "status", None) != 404:  # already expired: nothing to free
                raise

    def _pit_api(self) -> PitApi:
        api = self.capabilities.point_in_time
        if api is None:
            raise UnsupportedEngine(
                f"{self.engine} at {self.where} has no point-in-time API (OpenSearch has it "
                "since 2.4).",
                hint="Upgrade the cluster to OpenSearch 2.4 or later.",
            )
        return api

    @contextmanager
    def point_in_time(self, index: str, keep_alive: str = "5m") -> Iterator[str]:
        pit_id = self.open_pit(index, keep_alive)
        try:
            yield pit_id
        finally:
            self.close_pit(pit_id)

    def scan(
        self,
        index: str,
        *,
        query: Mapping[str, Any] | None = None,
        page_size: int = 1000,
        keep_alive: str = "5m",
    ) -> Iterator[list[dict[str, Any]]]:
        """Every hit of ``index`` (optionally matching ``query``) in pages of ``page_size``.

        Reads one consistent snapshot; memory holds one page, on the client and on the server
        (no fielddata): a point in time with ``search_after`` on ``_shard_doc`` where the engine
        has it (:attr:`Capabilities.shard_doc`), else a scroll sorted by ``_doc``, the order
        ``_reindex`` itself reads in.
        """
        if self.capabilities.shard_doc:
            yield from self._scan_pit(index, query, page_size, keep_alive)
        else:
            yield from self._scan_scroll(index, query, page_size, keep_alive)

    def _scan_pit(
        self, index: str, query: Mapping[str, Any] | None, page_size: int, keep_alive: str
    ) -> Iterator[list[dict[str, Any]]]:
        pit_id = self.open_pit(index, keep_alive)
        try:
            after: Any = None
            while True:
                body: dict[str, Any] = {
                    "pit": {"id": pit_id, "keep_alive": keep_alive},
                    "size": page_size,
                    "sort": [{"_shard_doc": "asc"}],
                    "track_total_hits": False,
                }
                if query:
                    body["query"] = dict(query)
                if after is not None:
                    body["search_after"] = after
                result = self.search(None, body)
                # Elasticsearch may hand out a new id with each page; the latest is the one to use.
                pit_id = str(result.get("pit_id") or pit_id)
                hits: list[dict[str, Any]] = result["hits"]["hits"]
                if not hits:
                    return
                yield hits
                after = hits[-1]["sort"]
        finally:
            self.close_pit(pit_id)

    def _scan_scroll(
        self, index: str, query: Mapping[str, Any] | None, page_size: int, keep_alive: str
    ) -> Iterator[list[dict[str, Any]]]:
        body: dict[str, Any] = {"size": page_size, "sort": ["_doc"]}
        if query:
            body["query"] = dict(query)
        yield from self.scroll(index, body, keep_alive=keep_alive)

    def scroll(
        self, index: str, body: Mapping[str, Any], *, keep_alive: str = "5m", **params: Any
    ) -> Iterator[list[dict[str, Any]]]:
        """The pages of a scroll over ``index`` searching with ``body`` (and ``params``, e.g.
        ``preference``): one snapshot, taken when the first page is read. The scroll is
        cleared when the iterator ends or is closed."""
        result = self.search(index, body, scroll=keep_alive, **params)
        scroll_id = result.get("_scroll_id")
        try:
            while True:
                hits: list[dict[str, Any]] = result["hits"]["hits"]
                if not hits:
                    return
                yield hits
                result = self.request(
                    "POST", "/_search/scroll", body={"scroll": keep_alive, "scroll_id": scroll_id}
                )
                scroll_id = result.get("_scroll_id") or scroll_id
                # A page that failed on a shard (its copy relocated or left, taking the scroll's
                # context with it) is not the end: it cannot be sent again, so it is an error.
                partial = partial_results(index, result)
                if partial is not None:
                    raise partial
        finally:
            if scroll_id:
                with contextlib.suppress(NotFoundError):  # expired already
                    self.request("DELETE", "/_search/scroll", body={"scroll_id": [scroll_id]})

    # -- tasks -----------------------------------------------------------------------------------

    def task(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/_tasks/{_p(task_id)}")
        return result

    def wait_task(
        self,
        task_id: str,
        *,
        poll_interval: float = 0.5,
        on_status: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll a background task (``wait_for_completion=false``) until it completes, at most
        ``poll_interval`` apart (sooner at first, see below).

        Long operations run as tasks rather than one HTTP call, so no proxy or client timeout can
        cut them off. ``on_status`` receives the task's ``status`` (counts) after every poll.
        Returns the task's ``response``; raises :class:`~esmigrate.exceptions.TaskFailed` when
        the task ended with an error or with per-document failures, and
        :class:`~esmigrate.exceptions.TaskLost` when the task vanished (its node restarted) or
        failed because a node it read from left the cluster (``lost_with_node``).
        """
        # The polls start 10 ms apart and double up to ``poll_interval``: a short task (a
        # catch-up round under the write block copies a few hundred documents) is seen done
        # within a few ms of its end, not up to a whole interval later; a long one costs a few
        # polls more.
        delay = min(0.01, poll_interval)
        while True:
            try:
                task = self.task(task_id)
            except NotFoundError:
                # Neither running nor stored in .tasks: it died with its node, and polling
                # on would wait forever.
                raise TaskLost(
                    f"Task {task_id} is gone before it completed: the cluster no longer knows "
                    "it (the node that ran it restarted or left the cluster).",
                    task_id=task_id,
                    hint="Run the command again once the cluster is healthy: a migration starts "
                    "the lost task's work again from its checkpoint.",
                ) from None
            status = task.get("task", {}).get("status") or {}
            if on_status is not None and status:
                on_status(status)
            if task.get("completed"):
                break
            time.sleep(delay)
            delay = min(delay * 2, poll_interval)
        response: dict[str, Any] = task.get("response") or {}
        error = task.get("error")
        failures = response.get("failures") or []
        if error or failures:
            etype, reason = server_reason(
                {"error": error} if error else {"error": failures[0].get("cause", failures[0])}
            )
            if error and lost_with_node(error):
                raise TaskLost(
                    f"Task {task_id} failed: a node it read from left the cluster "
                    f"({etype or 'error'}: {reason or 'no reason given'}).",
                    task_id=task_id,
                    hint="Run the command again once the cluster is healthy: a migration starts "
                    "the lost task's work again from its checkpoint.",
                )
            raise TaskFailed(
                f"Task {task_id} failed: {etype or 'error'}: {reason or 'no reason given'}"
                + (f" ({len(failures)} failures)" if failures else ""),
                task_id=task_id,
                response=response,
                error=error,
            )
        return response


#: The endpoints of a POST that only reads: sending one twice changes nothing.
_READ_ENDPOINTS = ("_search", "_msearch", "_count", "_mget", "_refresh", "scroll")


def is_read(method: str, path: str) -> bool:
    """Whether a request only reads (or, as ``_refresh``, has the same effect however often it
    is sent), so it may be sent again after a dropped connection or a refusal for load."""
    if method in ("GET", "HEAD"):
        return True
    return method == "POST" and path.rstrip("/").rsplit("/", 1)[-1] in _READ_ENDPOINTS


def _p(part: str) -> str:
    """Quote one path part (index names may contain characters like '<' in date math)."""
    return quote(part, safe=",*")


def connect(settings: ConnectionSettings | None = None, *, client: Any = None) -> Cluster:
    """Connect, detect the engine from ``GET /`` and return a :class:`Cluster`.

    ``client`` (or ``settings.client``) reuses an application's configured
    ``elasticsearch.Elasticsearch`` / ``opensearchpy.OpenSearch`` client as it is; otherwise a
    client is built from ``settings`` with the library the engine needs. Raises
    :class:`~esmigrate.exceptions.ClusterUnavailable`,
    :class:`~esmigrate.exceptions.AuthenticationError`,
    :class:`~esmigrate.exceptions.UnsupportedEngine` or
    :class:`~esmigrate.exceptions.MissingClient` (the extra to install) with a message naming
    the URL.
    """
    settings = settings or ConnectionSettings()
    client = client if client is not None else settings.client
    if client is not None:
        adapter = _clients.wrap(client)
        settings = replace(settings, urls=_client_urls(client), client=client, cloud_id=None)
        engine = parse_engine(adapter.info(settings.display_url))
        if engine.name != adapter.engine:
            raise UnsupportedEngine(
                f"The cluster at {settings.display_url} is {engine}, which a {adapter.library} "
                "client cannot drive.",
                hint="Pass an opensearchpy.OpenSearch client for OpenSearch, an "
                "elasticsearch.Elasticsearch client for Elasticsearch.",
            )
        return Cluster(settings, engine, adapter)

    if settings.aws_sigv4 and settings.aws_service == "aoss":
        # OpenSearch Serverless does not serve GET / (it answers 404); its API is OpenSearch 2's.
        return Cluster(settings, SERVERLESS, _clients.build("opensearch", settings))
    adapter = _clients.build(_clients.probe_library(settings), settings)
    try:
        engine = parse_engine(adapter.info(settings.display_url))
        if engine.name != adapter.engine:
            adapter.close()
            adapter = _clients.build(engine.name, settings)
            # The elasticsearch client checks X-Elastic-Product here, not halfway through a run.
            adapter.info(settings.display_url)
    except BaseException:
        adapter.close()
        raise
    return Cluster(settings, engine, adapter)


def _client_urls(client: Any) -> tuple[str, ...]:
    """The URLs an application's client talks to, for messages (without credentials)."""
    urls: list[str] = []
    transport = getattr(client, "transport", None)
    pool = getattr(transport, "node_pool", None)
    if pool is not None:  # elasticsearch (elastic-transport)
        urls = [str(node.base_url) for node in pool.all()]
    for host in getattr(transport, "hosts", None) or []:  # opensearch-py
        if isinstance(host, dict) and host.get("host"):
            scheme = "https" if host.get("use_ssl") or host.get("scheme") == "https" else "http"
            prefix = str(host.get("url_prefix") or "")
            urls.append(f"{scheme}://{host['host']}:{host.get('port', 9200)}{prefix}")
    return tuple(redact_url(url) for url in urls) or (DEFAULT_URL,)


def iter_bulk_errors(result: Mapping[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    """(action, item) for every failed item of a bulk response."""
    if not result.get("errors"):
        return
    for item in result.get("items", []):
        for action, detail in item.items():
            if "error" in detail:
                yield action, detail
