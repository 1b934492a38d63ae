"""Zero-downtime data migration: blue-green, in-place, incremental, and ``adopt``.

The engine is a library: strategies are classes whose ``plan()`` returns operations as data and
whose ``run()`` does the work, reporting :class:`ProgressEvent`\\ s and keeping a resumable
checkpoint in the state index.
"""

from esmigrate.migrate._adopt import AdoptResult, adopt, plan_adopt
from esmigrate.migrate._bluegreen import BlueGreen, MigrationResult, migrate
from esmigrate.migrate._deadletters import DeadLetters
from esmigrate.migrate._incremental import Incremental, IncrementalResult, incremental
from esmigrate.migrate._inplace import InPlace, InPlaceResult, in_place
from esmigrate.migrate._plan import PlanStep, describe_plan
from esmigrate.migrate._progress import (
    LogReporter,
    Meter,
    ProgressCallback,
    ProgressEvent,
    Reporter,
    RichReporter,
    reporter,
)
from esmigrate.migrate._python_copy import TokenBucket
from esmigrate.migrate._throttle import rethrottle, throttle

__all__ = [
    "AdoptResult",
    "BlueGreen",
    "DeadLetters",
    "InPlace",
    "InPlaceResult",
    "Incremental",
    "IncrementalResult",
    "LogReporter",
    "Meter",
    "MigrationResult",
    "PlanStep",
    "ProgressCallback",
    "ProgressEvent",
    "Reporter",
    "RichReporter",
    "TokenBucket",
    "adopt",
    "describe_plan",
    "in_place",
    "incremental",
    "migrate",
    "plan_adopt",
    "reporter",
    "rethrottle",
    "throttle",
]
