"""The migration report: a self-contained HTML page of what ``op.migrate`` recorded.

:func:`render` turns revision and rebuild records (as the history stores them, see
:mod:`esmigrate.operations._migrate_record`) into the page; ``esmigrate report``,
``upgrade --report`` and ``rebuild --report`` write it. Pure: it reads nothing and sends nothing.
"""

from esmigrate.report._page import migrations_of, record_id, render

__all__ = ["migrations_of", "record_id", "render"]
