#!/usr/bin/env bash
# The Python SDK's checks: lint, format, types, tests (vectors and transcripts included), in the
# virtualenv sdk/python/venv.sh makes (`pip install ./sdk/python[dev]`, as a user would).
# Usage: sdk/python/test.sh   (from any directory)
# Env: LOOM_PYTHON, LOOM_PY_VENV (see venv.sh); LOOM_FAKE_NODE (the fake node binary; see
# tests/test_transcripts.py).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
VENV=$(./venv.sh)

echo "== ruff check";          timeout 300 "$VENV/bin/ruff" check .
echo "== ruff format --check"; timeout 300 "$VENV/bin/ruff" format --check .
echo "== mypy --strict";       timeout 600 "$VENV/bin/mypy"
echo "== pytest";              timeout 1200 "$VENV/bin/pytest" -q -p no:cacheprovider
