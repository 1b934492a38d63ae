"""Testing migrations against a real cluster.

The pytest plugin (:mod:`esmigrate.testing.pytest_plugin`, registered automatically when esmigrate
is installed) gives a test suite a real cluster: the embedded OpenSearch node started once per
session on a free port, or the cluster named by ``ESMIGRATE_TEST_URL`` (with the usual
``ESMIGRATE_*`` credentials), so one suite runs against OpenSearch and Elasticsearch alike.

Fixtures: ``esmigrate_settings`` (session), ``esmigrate_cluster`` (session), ``esmigrate_prefix``
(a unique index-name prefix; every index under it is deleted after the test).

:class:`LiveWriter` plays the application during a migration (index, update, delete through the
alias, retrying through a write block) and :meth:`WriterReport.verify` proves afterwards that
nothing was lost. :func:`compare_server_side` proves a rule set's Painless form gives the documents its Python form
gives, on your own sample documents.
"""

from esmigrate.testing._cluster import cluster_for_tests, delete_prefixed, unique_prefix
from esmigrate.testing._transform import Mismatch, ServerSideReport, compare_server_side
from esmigrate.testing._writer import LiveWriter, WriterReport

__all__ = [
    "LiveWriter",
    "Mismatch",
    "ServerSideReport",
    "WriterReport",
    "cluster_for_tests",
    "compare_server_side",
    "delete_prefixed",
    "unique_prefix",
]
