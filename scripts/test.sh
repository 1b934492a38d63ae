#!/usr/bin/env bash
# The whole check, from a fresh clone: set-up, lint, types, unit and integration tests.
# Integration tests start their own OpenSearch node unless ESMIGRATE_TEST_URL names a cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/pytest "$@"

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
