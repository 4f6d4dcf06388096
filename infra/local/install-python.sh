#!/usr/bin/env bash
# Creates the project-local Python virtualenvs and installs their pinned requirements into them:
# .venv from requirements.txt (the moto AWS emulator, the Metaflow client, the Python test tools), and
# .venv-checkov from requirements-checkov.txt (checkov, whose pins cannot share .venv: see that file).
# Does nothing for a virtualenv that already matches its requirements file.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${MFENV_PYTHON:-python3}"

check_python() {
  # Both requirements files pin packages that need Python 3.11 (numpy, schemathesis, networkx among them).
  if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "mfenv: local mode needs Python 3.11 or newer as '$python' (set MFENV_PYTHON to another interpreter)." >&2
    exit 1
  fi
}

# install_venv DIRECTORY REQUIREMENTS WHAT: (re)installs REQUIREMENTS into the virtualenv DIRECTORY (both
# relative to the repository root) unless the stamp there holds the hash of that very requirements file.
install_venv() {
  local venv="$root/$1" requirements="$root/$2" what="$3"
  local stamp="$venv/.requirements.sha256"
  local want
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"

  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi

  check_python
  echo "mfenv: installing $what into $1 (once)..." >&2
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" > "$stamp"
}

install_venv .venv requirements.txt "the emulator and the Metaflow client"
install_venv .venv-checkov requirements-checkov.txt "checkov (the template scanner npm test runs)"
