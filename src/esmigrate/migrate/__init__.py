"""Zero-downtime data migration: blue-green, in-place, incremental, and ``adopt``.

The engine is a library: strategies are classes whose ``plan()`` returns operations as data and
whose ``run()`` does the work, reporting :class:`ProgressEvent`\\ s and keeping a resumable
checkpoint in the state index.
"""

from esmigrate.migrate._bluegreen import BlueGreen, MigrationResult, migrate
from esmigrate.migrate._copy import DeadLetters, TokenBucket
from esmigrate.migrate._ops import Operation, Request, describe_plan
from esmigrate.migrate._progress import (
    LogReporter,
    Meter,
    ProgressCallback,
    ProgressEvent,
    Reporter,
    RichReporter,
    reporter,
)

__all__ = [
    "BlueGreen",
    "DeadLetters",
    "LogReporter",
    "Meter",
    "MigrationResult",
    "Operation",
    "ProgressCallback",
    "ProgressEvent",
    "Reporter",
    "Request",
    "RichReporter",
    "TokenBucket",
    "describe_plan",
    "migrate",
    "reporter",
]
