"""Migration scripts: loading files, the revision graph, the template, checksums.

Nothing in this package talks to a cluster; it is the ``script`` layer of Alembic's design.
"""

from esmigrate.script._directory import DEFAULT_TEMPLATE, TEMPLATE_FILE, ScriptDirectory
from esmigrate.script._graph import RevisionGraph, Route
from esmigrate.script._script import Script, checksum, load_script

__all__ = [
    "DEFAULT_TEMPLATE",
    "TEMPLATE_FILE",
    "RevisionGraph",
    "Route",
    "Script",
    "ScriptDirectory",
    "checksum",
    "load_script",
]
