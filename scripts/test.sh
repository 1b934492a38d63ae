#!/usr/bin/env bash
# The whole check, from a fresh clone: set-up, lint, types, unit and integration tests.
#
# Integration tests start their own OpenSearch node unless ESMIGRATE_TEST_URL names a cluster. The
# engine matrix: the whole suite runs on OpenSearch 2.19 (the default engine), then the tests marked
# `engine_matrix` (copy paths, point-in-time readers, live writes, positions, rollback, snapshots)
# run again on OpenSearch 3.x, then the whole suite with the older client generation (below).
# Arguments go to pytest in every run; in the OpenSearch 3.x run, a `-m EXPR` of yours becomes
# `-m "engine_matrix and (EXPR)"`. That run is left out when ESMIGRATE_TEST_URL or
# ESMIGRATE_TEST_ENGINE is set (one cluster, or one engine, of your choice).
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

# -- The second engine ---------------------------------------------------------------------------
SECOND_ENGINE=opensearch:3.9.0
if [ -z "${ESMIGRATE_TEST_URL:-}" ] && [ -z "${ESMIGRATE_TEST_ENGINE:-}" ]; then
  args=()
  marked=0
  for_args=("$@")
  while [ ${#for_args[@]} -gt 0 ]; do
    arg=${for_args[0]}
    for_args=("${for_args[@]:1}")
    case "$arg" in
      -m) args+=(-m "engine_matrix and (${for_args[0]-})"); marked=1; for_args=("${for_args[@]:1}") ;;
      -m=*) args+=(-m "engine_matrix and (${arg#-m=})"); marked=1 ;;
      -m*) args+=(-m "engine_matrix and (${arg#-m})"); marked=1 ;;
      *) args+=("$arg") ;;
    esac
  done
  [ "$marked" = 1 ] || args+=(-m engine_matrix)
  echo "test.sh: the engine_matrix tests on $SECOND_ENGINE" >&2
  status=0
  ESMIGRATE_TEST_ENGINE=$SECOND_ENGINE .venv/bin/pytest "${args[@]}" || status=$?
  # 5: the selection holds no engine_matrix test (e.g. `-m "not integration"`): nothing to run.
  if [ "$status" = 5 ]; then
    echo "test.sh: no engine_matrix test selected; nothing ran on $SECOND_ENGINE" >&2
  elif [ "$status" != 0 ]; then
    exit "$status"
  fi
fi

# -- The older client generation ---------------------------------------------------------------
# The same tests once more in a second virtualenv, .venv-oldclients, with the lowest client
# versions pyproject.toml allows (constraints-oldclients.txt: opensearch-py 2.x, elasticsearch 8.x
# and the separate elasticsearch-dsl 8.x package), against the default embedded node (OpenSearch
# 2.19): esmigrate must keep working beside an application pinned to those. Lint and types ran
# above; this step only runs the tests. ESMIGRATE_SKIP_OLD_CLIENTS=1 skips it.
if [ "${ESMIGRATE_SKIP_OLD_CLIENTS:-0}" != 1 ]; then
  if [ ! -x .venv-oldclients/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv-oldclients
  fi
  .venv-oldclients/bin/pip install -q -c constraints-oldclients.txt -e '.[dev]' elasticsearch-dsl
  ESMIGRATE_TEST_ENGINE=opensearch:2.19.6 .venv-oldclients/bin/pytest -p no:cacheprovider "$@"
fi
