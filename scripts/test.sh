#!/usr/bin/env bash
# The whole suite: lint, then every test (browser tests in headless Chromium, ledger tests on
# SQLite and on a throwaway PostgreSQL server when one can be started here).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"

"$VENV/bin/ruff" check --no-cache .
"$VENV/bin/ruff" format --check --no-cache .
exec bash scripts/with-postgres.sh "$VENV/bin/python" -m pytest "$@"
