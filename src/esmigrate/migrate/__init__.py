"""Zero-downtime data migration: blue-green, in-place, incremental, and ``adopt``.

The migrator is a library: strategies are classes whose ``plan()`` returns steps as data and
whose ``run()`` does the work, reporting :class:`ProgressEvent`\\ s (drawn by
:func:`esmigrate.progress.progress_display`, or however the caller likes) and keeping a
resumable checkpoint in the state index.
"""

from esmigrate.migrate._adopt import AdoptResult, adopt, plan_adopt
from esmigrate.migrate._bluegreen import BlueGreen, MigrationResult, migrate
from esmigrate.migrate._deadletters import DeadLetters
from esmigrate.migrate._incremental import Incremental, IncrementalResult, incremental
from esmigrate.migrate._inplace import InPlace, InPlaceResult, in_place
from esmigrate.migrate._old_writes import (
    OldWrites,
    old_writes,
    remove_upgrade_pipelines,
    upgrade_pipelines,
)
from esmigrate.migrate._plan import PlanStep, describe_plan
from esmigrate.migrate._python_copy import TokenBucket
from esmigrate.migrate._throttle import rethrottle, throttle
from esmigrate.migrate._validate import sampled_differences
from esmigrate.progress import Meter, ProgressCallback, ProgressEvent

__all__ = [
    "AdoptResult",
    "BlueGreen",
    "DeadLetters",
    "InPlace",
    "InPlaceResult",
    "Incremental",
    "IncrementalResult",
    "Meter",
    "MigrationResult",
    "OldWrites",
    "PlanStep",
    "ProgressCallback",
    "ProgressEvent",
    "TokenBucket",
    "adopt",
    "describe_plan",
    "in_place",
    "incremental",
    "migrate",
    "old_writes",
    "plan_adopt",
    "remove_upgrade_pipelines",
    "rethrottle",
    "sampled_differences",
    "throttle",
    "upgrade_pipelines",
]
