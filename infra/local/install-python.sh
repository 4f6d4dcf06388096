#!/usr/bin/env bash
# Creates the project-local Python virtualenv (.venv) and installs the pinned requirements into it:
# the moto AWS emulator and the Metaflow client. Does nothing when .venv already matches requirements.txt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$root/requirements.txt" | cut -d' ' -f1)"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

python="${MFENV_PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null; then
  echo "mfenv: local mode needs Python 3.9 or newer as '$python' (set MFENV_PYTHON to another interpreter)." >&2
  exit 1
fi

echo "mfenv: installing the emulator and the Metaflow client into .venv (once)..." >&2
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/requirements.txt"
echo "$want" > "$stamp"
