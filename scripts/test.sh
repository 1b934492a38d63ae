#!/usr/bin/env bash
# The whole check, from a fresh clone: set-up, lint, types, unit and integration tests.
#
# Integration tests start their own OpenSearch node unless ESMIGRATE_TEST_URL names a cluster. The
# engine matrix: the whole suite runs on OpenSearch 2.19 (the default engine), then the tests marked
# `engine_matrix` (copy paths, point-in-time readers, live writes, positions, rollback, snapshots)
# run again on OpenSearch 3.x. Arguments go to pytest in both runs; in the second, a `-m EXPR` of
# yours becomes `-m "engine_matrix and (EXPR)"`. The second run is left out when ESMIGRATE_TEST_URL
# or ESMIGRATE_TEST_ENGINE is set (one cluster, or one engine, of your choice).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"

SECOND_ENGINE=opensearch:3.9.0
if [ -n "${ESMIGRATE_TEST_URL:-}" ] || [ -n "${ESMIGRATE_TEST_ENGINE:-}" ]; then
  exit 0
fi
args=()
marked=0
while [ $# -gt 0 ]; do
  case "$1" in
    -m) args+=(-m "engine_matrix and (${2-})"); marked=1; shift $(( $# > 1 ? 2 : 1 )) ;;
    -m=*) args+=(-m "engine_matrix and (${1#-m=})"); marked=1; shift ;;
    -m*) args+=(-m "engine_matrix and (${1#-m})"); marked=1; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
[ "$marked" = 1 ] || args+=(-m engine_matrix)
echo "test.sh: the engine_matrix tests on $SECOND_ENGINE" >&2
status=0
ESMIGRATE_TEST_ENGINE=$SECOND_ENGINE .venv/bin/pytest "${args[@]}" || status=$?
# 5: the selection holds no engine_matrix test (e.g. `-m "not integration"`): nothing to run.
if [ "$status" = 5 ]; then
  echo "test.sh: no engine_matrix test selected; nothing ran on $SECOND_ENGINE" >&2
  exit 0
fi
exit "$status"
