"""Document schemas: semantic versions, versioned documents, mapping diffs and schema history."""

from esmigrate.schema.detect import VersionCounts, detect_schema_versions
from esmigrate.schema.diff import (
    Change,
    ChangeKind,
    Compatibility,
    MappingDiff,
    diff_mappings,
)
from esmigrate.schema.documents import (
    Upgrades,
    UpgradeStep,
    VersionedDocument,
    migrate_to_latest,
    upgrades,
)
from esmigrate.schema.history import SchemaHistory, SchemaRelease, UpgradeValidation
from esmigrate.schema.mapping import index_name_of, live_mapping, mapping_of, normalize_mapping
from esmigrate.schema.render import render_operations
from esmigrate.schema.versions import SchemaVersion, version

__all__ = [
    "Change",
    "ChangeKind",
    "Compatibility",
    "MappingDiff",
    "SchemaHistory",
    "SchemaRelease",
    "SchemaVersion",
    "UpgradeStep",
    "UpgradeValidation",
    "Upgrades",
    "VersionCounts",
    "VersionedDocument",
    "detect_schema_versions",
    "diff_mappings",
    "index_name_of",
    "live_mapping",
    "mapping_of",
    "migrate_to_latest",
    "normalize_mapping",
    "render_operations",
    "upgrades",
    "version",
]
