"""Testing migrations against a real cluster.

The pytest plugin (:mod:`esmigrate.testing.pytest_plugin`, registered automatically when esmigrate
is installed) gives a test suite a real cluster: the embedded OpenSearch node started once per
session on a free port, or the cluster named by ``ESMIGRATE_TEST_URL`` (with the usual
``ESMIGRATE_*`` credentials), so one suite runs against OpenSearch and Elasticsearch alike.

Fixtures: ``esmigrate_settings`` (session), ``esmigrate_cluster`` (session), ``esmigrate_prefix``
(a unique index-name prefix; every index under it is deleted after the test), ``esmigrate_config``
(the project's config on the test cluster, with a history index of its own; every index created
during the test is deleted after it), ``esmigrate_timings`` (steps timed, printed at the end).

:class:`LiveWriter` plays the application during a migration (index, update, delete through the
alias, retrying through a write block) and :meth:`WriterReport.verify` proves afterwards that
nothing was lost (:meth:`WriterReport.tally` counts what was). :func:`compare_server_side`
proves a rule set's Painless form gives the documents its Python form gives, on your own sample
documents.

As pytest-alembic does for SQL: :func:`assert_single_head`, :func:`assert_downgrades_exist` (read
the scripts only), :func:`assert_no_drift` (Document classes vs what the migrations produce) and
:func:`assert_round_trip` (upgrade, back, compare with the start). :func:`check_integrity` /
:func:`assert_integrity` compare two indices (counts, every id, a deep compare); :class:`Timings`
records what migration steps took.
"""

from esmigrate._livewriter import LiveWriter, WriterReport, WriterTally
from esmigrate.testing._cluster import cluster_for_tests, delete_prefixed, unique_prefix
from esmigrate.testing._integrity import (
    DocumentDifference,
    IntegrityReport,
    assert_integrity,
    check_integrity,
)
from esmigrate.testing._round_trip import RoundTripReport, assert_round_trip
from esmigrate.testing._scripts import assert_downgrades_exist, assert_no_drift, assert_single_head
from esmigrate.testing._timing import Step, Timings
from esmigrate.testing._transform import Mismatch, ServerSideReport, compare_server_side

__all__ = [
    "DocumentDifference",
    "IntegrityReport",
    "LiveWriter",
    "Mismatch",
    "RoundTripReport",
    "ServerSideReport",
    "Step",
    "Timings",
    "WriterReport",
    "WriterTally",
    "assert_downgrades_exist",
    "assert_integrity",
    "assert_no_drift",
    "assert_round_trip",
    "assert_single_head",
    "check_integrity",
    "cluster_for_tests",
    "compare_server_side",
    "delete_prefixed",
    "unique_prefix",
]
