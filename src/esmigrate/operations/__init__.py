"""Operations as data: what a migration does, able to describe and execute itself.

A script's ``upgrade(op)`` calls methods of :class:`Operations` (``op.create_index(...)``); each
records a frozen dataclass. ``describe()`` lists the requests it will send (that is what ``plan``
prints); ``execute(cluster, ctx)`` sends them and converges when run again.
"""

from esmigrate.cluster import PlannedRequest
from esmigrate.operations._alias import AliasAction, UpdateAliases
from esmigrate.operations._base import ExecContext, Operation, OpResult
from esmigrate.operations._cluster_ops import (
    CallPython,
    DeleteIndexTemplate,
    DeletePipeline,
    PutIndexTemplate,
    PutPipeline,
    RawRequest,
)
from esmigrate.operations._data import Reindex, UpdateByQuery
from esmigrate.operations._index import (
    CreateIndex,
    DeleteIndex,
    PutMapping,
    Refresh,
    UpdateSettings,
    mapping_differences,
)
from esmigrate.operations._migrate import Migrate, migration_id, rollback_point_name
from esmigrate.operations._migrate_record import (
    MAX_INTERRUPTED_RUNS,
    failure_record,
    recording,
    success_record,
)
from esmigrate.operations._recorder import Operations
from esmigrate.operations._schema import index_definition, mapping_of
from esmigrate.transform import Transform

__all__ = [
    "MAX_INTERRUPTED_RUNS",
    "AliasAction",
    "CallPython",
    "CreateIndex",
    "DeleteIndex",
    "DeleteIndexTemplate",
    "DeletePipeline",
    "ExecContext",
    "Migrate",
    "OpResult",
    "Operation",
    "Operations",
    "PlannedRequest",
    "PutIndexTemplate",
    "PutMapping",
    "PutPipeline",
    "RawRequest",
    "Refresh",
    "Reindex",
    "Transform",
    "UpdateAliases",
    "UpdateByQuery",
    "UpdateSettings",
    "failure_record",
    "index_definition",
    "mapping_differences",
    "mapping_of",
    "migration_id",
    "recording",
    "rollback_point_name",
    "success_record",
]
