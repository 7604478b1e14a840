#!/usr/bin/env bash
# The Python SDK's checks: lint, format, types, tests (vectors and transcripts included), in the
# virtualenv sdk/python/venv.sh makes (`pip install ./sdk/python[dev]`, as a user would); then the
# tests again on Python 3.9 and 3.13 where they are installed.
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

# The oldest and the newest Python the SDK supports, where installed (pythonX.Y on PATH, or
# pyenv's): the tests again in a virtualenv of each. Lint and types ran above, once.
for v in 3.9 3.13; do
  py=""
  for candidate in "python$v" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/python; do
    # A pyenv shim of an inactive version exists but fails: only a working interpreter counts.
    if "$candidate" -c 'import sys' >/dev/null 2>&1; then py=$candidate; break; fi
  done
  if [ -z "$py" ]; then
    echo "== pytest on Python $v: no Python $v installed here, not run"
    continue
  fi
  venv=$(LOOM_PYTHON="$py" LOOM_PY_VENV="$HOME/.cache/linkloom/venv-py${v/./}" ./venv.sh)
  echo "== pytest on $("$venv/bin/python" --version)"
  timeout 1200 "$venv/bin/pytest" -q -p no:cacheprovider
done
