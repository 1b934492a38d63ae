"""The steps ``esmigrate deploy`` adds around the plain commands: the maintenance window gate
(:func:`enter_window`), ...

Each is a function over a :class:`~esmigrate.config.Config` returning what it did as data (a
step of the deployment log), so :mod:`esmigrate.deploy` only orders them.
"""

from esmigrate.pipeline._window import enter_window

__all__ = ["enter_window"]
