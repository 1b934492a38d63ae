"""When to send a request again, and how long to wait first: the one retry policy of esmigrate.

A request is sent again only where that cannot apply it twice with a different outcome: a
connection that could not be made (nothing reached the server), a read (a search, a count, an
``_mget``, a GET) whose connection dropped or that the server refused for load, a bulk item or
request the server refused for load (429, 502, 503, 504), a history write whose index was not
ready yet. A write whose connection dropped after it was sent is not sent again here: the
server may have applied it, and only its caller knows how to tell. Each use is a
:class:`RetryPolicy` (how many more tries, the backoff, which statuses): the connection's
(:attr:`esmigrate.cluster.Cluster.retry`), :data:`READS` for reads refused for load,
:data:`LOAD` for the copy's bulk requests and :data:`HISTORY` for the history index's first
seconds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from esmigrate.exceptions import RequestError

T = TypeVar("T")

#: Statuses that say "not now": the request may be sent again after a wait.
BUSY = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``retries`` more tries after the first, waiting an exponential, jittered backoff
    (``base * 2**attempt`` seconds, at most ``cap``, times 0.5-1.0) before each."""

    retries: int = 8
    base: float = 0.2
    cap: float = 30.0
    #: Statuses of a :class:`~esmigrate.exceptions.RequestError` that may be retried.
    statuses: frozenset[int] = BUSY

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
        return float(min(self.cap, self.base * (2**attempt)) * (0.5 + random.random() / 2))

    def wait(self, attempt: int) -> None:
        time.sleep(self.delay(attempt))

    def retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, RequestError) and exc.status in self.statuses

    def call(
        self,
        fn: Callable[[], T],
        *,
        retryable: Callable[[BaseException], bool] | None = None,
        before_retry: Callable[[int], None] | None = None,
    ) -> T:
        """``fn()``, tried again while it raises what ``retryable`` accepts (default: a
        :class:`~esmigrate.exceptions.RequestError` with one of :attr:`statuses`) and tries
        remain; ``before_retry(attempt)`` runs before each wait (to wait for a shard, say)."""
        accept = retryable or self.retryable
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                if attempt >= self.retries or not accept(exc):
                    raise
            if before_retry is not None:
                before_retry(attempt)
            self.wait(attempt)
            attempt += 1


#: Reads the server refused for load (a search thread pool's queue full, a shard not yet
#: started): five more tries, up to ~5 s apart.
READS = RetryPolicy(retries=5, base=0.2, cap=5.0)
#: Bulk requests and items the server refused for load: eight more tries, up to ~30 s apart.
LOAD = RetryPolicy()
#: The history index right after another runner created it: its primary may not be started yet
#: (503 "all shards failed"). Five more tries, shortly apart (each after a health wait).
HISTORY = RetryPolicy(retries=5, base=0.1, cap=2.0, statuses=frozenset({503}))
