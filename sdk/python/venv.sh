#!/usr/bin/env bash
# Makes (or refreshes) the virtualenv the Python SDK's checks run in, with `pip install
# ./sdk/python[dev]` done the way a user does it, and prints its path on stdout. Reinstalls only
# when the SDK's sources changed since the last install.
#
# Env: LOOM_PYTHON (interpreter; default python3.11, else python3), LOOM_PY_VENV (default
# ~/.cache/linkloom/venv-py311), PIP_CACHE_DIR (default ~/.cache/pip).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${LOOM_PY_VENV:-$HOME/.cache/linkloom/venv-py311}
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-$HOME/.cache/pip}
export PIP_DISABLE_PIP_VERSION_CHECK=1

PYTHON=${LOOM_PYTHON:-}
if [ -z "$PYTHON" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi
if ! command -v "$PYTHON" >/dev/null 2>&1 || ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "installing Python 3 with venv (the Python SDK is built and tested in a virtualenv)" >&2
  apt-get update -qq >&2 && apt-get install -y -qq python3 python3-venv python3-pip >&2
  PYTHON=python3
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || {
  echo "$PYTHON is older than 3.9; set LOOM_PYTHON to a newer interpreter" >&2
  exit 1
}

if [ ! -x "$VENV/bin/python" ]; then
  timeout 300 "$PYTHON" -m venv "$VENV" >&2
fi
stamp=$(cd "$ROOT/sdk/python" && find pyproject.toml README.md src -type f ! -path '*/__pycache__/*' -print0 \
  | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.linkloom-sources" 2>/dev/null)" != "$stamp" ]; then
  echo "pip install ./sdk/python[dev] into $VENV" >&2
  timeout 900 "$VENV/bin/pip" install -q "$ROOT/sdk/python[dev]" >&2
  echo "$stamp" > "$VENV/.linkloom-sources"
fi
echo "$VENV"
