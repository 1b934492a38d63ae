"""One plain function per CLI verb, each taking a :class:`~esmigrate.config.Config`.

The CLI (``esmigrate.cli``) only parses arguments and prints what these return, so every verb is
also a Python API: ``esmigrate.command.info(load_config())``.

The verbs are grouped by area in private modules, as the CLI's are; import them from here.
:func:`rebuild` alone takes its config as a keyword (default: ``load_config()``), so that it is
also the one-liner ``esmigrate.rebuild("products", to=Product)``.
"""

from esmigrate.command._base import (
    open_cluster,
)
from esmigrate.command._bench import bench
from esmigrate.command._compare import compare
from esmigrate.command._estimate import DEFAULT_SAMPLE, Estimate, Work
from esmigrate.command._migrations import (
    adopt,
    baseline,
    copy_sources,
    downgrade,
    history,
    old_writes_list,
    old_writes_remove,
    plan,
    preflight,
    repair,
    stamp,
    status,
    throttle,
    upgrade,
    validate,
)
from esmigrate.command._project import (
    autogenerate_operations,
    info,
    init,
    merge,
    revision,
)
from esmigrate.command._rebuild import RebuildResult, rebuild
from esmigrate.command._report import report
from esmigrate.command._rollback import (
    monitor,
    rollback,
    rollback_point_cleanup,
    rollback_point_cleanup_later,
    rollback_point_create,
    rollback_point_list,
    rollback_point_show,
)
from esmigrate.command._schema import (
    check,
    load_object,
    load_transform,
    preview,
    schema_documents,
    schema_versions,
)
from esmigrate.command._scripts import (
    Current,
    ScriptDetails,
    ScriptSummary,
    branches,
    current,
    heads,
    scripts,
    show,
)

__all__ = [
    "DEFAULT_SAMPLE",
    "Current",
    "Estimate",
    "RebuildResult",
    "ScriptDetails",
    "ScriptSummary",
    "Work",
    "adopt",
    "autogenerate_operations",
    "baseline",
    "bench",
    "branches",
    "check",
    "compare",
    "copy_sources",
    "current",
    "downgrade",
    "heads",
    "history",
    "info",
    "init",
    "load_object",
    "load_transform",
    "merge",
    "monitor",
    "old_writes_list",
    "old_writes_remove",
    "open_cluster",
    "plan",
    "preflight",
    "preview",
    "rebuild",
    "repair",
    "report",
    "revision",
    "rollback",
    "rollback_point_cleanup",
    "rollback_point_cleanup_later",
    "rollback_point_create",
    "rollback_point_list",
    "rollback_point_show",
    "schema_documents",
    "schema_versions",
    "scripts",
    "show",
    "stamp",
    "status",
    "throttle",
    "upgrade",
    "validate",
]
