#!/usr/bin/env bash
# The whole check, from a fresh clone: set-up, lint, types, unit and integration tests.
#
# Integration tests start their own OpenSearch node unless ESMIGRATE_TEST_URL names a cluster. The
# engine matrix: the whole suite runs on OpenSearch 2.19 (the default engine), then the tests marked
# `engine_matrix` (copy paths, point-in-time readers, live writes, positions, rollback, snapshots)
# run again on OpenSearch 3.x, then the whole suite but the fault suite (`faults`) with the older
# client generation (below). Arguments go to pytest in every run; a `-m EXPR` of yours becomes
# `-m "engine_matrix and (EXPR)"` in the OpenSearch 3.x run and `-m "not faults and (EXPR)"` in
# the older clients' run. The OpenSearch 3.x run is left out when ESMIGRATE_TEST_URL or
# ESMIGRATE_TEST_ENGINE is set (one cluster, or one engine, of your choice). The full fault run
# (every seed and fault) is scripts/faults.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
# The documentation site: a broken link, anchor or nav entry fails (strict: true in mkdocs.yml).
docs_site=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet -d "$docs_site"
rm -rf "$docs_site"
.venv/bin/pytest "$@"

# with_marker EXPR ARGS...: ARGS into the array `marked_args`, every `-m X` of yours becoming
# `-m "EXPR and (X)"`, and `-m EXPR` added when there is none.
with_marker() {
  local expr=$1 found=0
  shift
  marked_args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      -m) marked_args+=(-m "$expr and (${2-})"); found=1; [ $# -lt 2 ] || shift ;;
      -m=*) marked_args+=(-m "$expr and (${1#-m=})"); found=1 ;;
      -m*) marked_args+=(-m "$expr and (${1#-m})"); found=1 ;;
      *) marked_args+=("$1") ;;
    esac
    shift
  done
  [ "$found" = 1 ] || marked_args+=(-m "$expr")
}

# run_selected WHAT COMMAND...: run it; pytest's 5 (the selection holds no test, e.g. `-m "not
# integration"` in the OpenSearch 3.x run) means nothing to run there, not a failure.
run_selected() {
  local what=$1 status=0
  shift
  "$@" || status=$?
  if [ "$status" = 5 ]; then
    echo "test.sh: no test selected for $what; nothing ran" >&2
  elif [ "$status" != 0 ]; then
    exit "$status"
  fi
}

# -- The second engine ---------------------------------------------------------------------------
SECOND_ENGINE=opensearch:3.9.0
if [ -z "${ESMIGRATE_TEST_URL:-}" ] && [ -z "${ESMIGRATE_TEST_ENGINE:-}" ]; then
  with_marker engine_matrix "$@"
  echo "test.sh: the engine_matrix tests on $SECOND_ENGINE" >&2
  run_selected "$SECOND_ENGINE" env ESMIGRATE_TEST_ENGINE=$SECOND_ENGINE .venv/bin/pytest "${marked_args[@]}"
fi

# -- The older client generation ---------------------------------------------------------------
# The same tests once more, except the fault suite (`faults`: it tests the engine's behaviour,
# which does not depend on the client, and is the slowest part), in a second virtualenv,
# .venv-oldclients, with the lowest client versions pyproject.toml allows
# (constraints-oldclients.txt: opensearch-py 2.x, elasticsearch 8.x and the separate
# elasticsearch-dsl 8.x package), against the default embedded node (OpenSearch 2.19): esmigrate
# must keep working beside an application pinned to those. A `-m EXPR` of yours becomes
# `-m "not faults and (EXPR)"`. Lint and types ran above; this step only runs the tests.
# ESMIGRATE_SKIP_OLD_CLIENTS=1 skips it.
if [ "${ESMIGRATE_SKIP_OLD_CLIENTS:-0}" != 1 ]; then
  if [ ! -x .venv-oldclients/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv-oldclients
  fi
  .venv-oldclients/bin/pip install -q -c constraints-oldclients.txt -e '.[dev]' elasticsearch-dsl
  with_marker "not faults" "$@"
  run_selected "the older clients" env ESMIGRATE_TEST_ENGINE=opensearch:2.19.6 \
    .venv-oldclients/bin/pytest -p no:cacheprovider "${marked_args[@]}"
fi
