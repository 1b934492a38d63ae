"""The migration report: a self-contained HTML page of what ``op.migrate`` recorded.

:func:`render` turns revision records (as the history stores them, see
:mod:`esmigrate.operations._migrate_record`) into the page; ``esmigrate report REV`` and
``upgrade --report`` write it. Pure: it reads nothing and sends nothing.
"""

from esmigrate.report._page import migrations_of, render

__all__ = ["migrations_of", "render"]
