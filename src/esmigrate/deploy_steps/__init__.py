"""The steps ``esmigrate deploy`` adds around the plain commands: the maintenance window gate
(:func:`enter_window`), the user checks of the health watch (:func:`load_checks`) and the
rollback of a failed deploy's earlier cut-overs (:func:`roll_back_all`).

Each is a function over a :class:`~esmigrate.config.Config` returning what it did as data (a
step of the deployment log), so :mod:`esmigrate.deploy` only orders them.
"""

from esmigrate.deploy_steps._checks import UserCheck, load_checks
from esmigrate.deploy_steps._rollback_all import deploy_points, roll_back_all, rolled_back_error
from esmigrate.deploy_steps._window import enter_window

__all__ = [
    "UserCheck",
    "deploy_points",
    "enter_window",
    "load_checks",
    "roll_back_all",
    "rolled_back_error",
]
