#!/usr/bin/env bash
# Creates (once) the Python venv with the pinned TensorFlow oracle and prints its path.
# Safe to re-run: the venv is rebuilt only when scripts/requirements*.txt change.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${KILN_VENV:-$HOME/.cache/kiln/venv}"
stamp="$venv/.kiln-requirements.sha256"
want="$(cat "$root/scripts/requirements.txt" "$root/scripts/requirements-nodeps.txt" | sha256sum | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$venv"
  exit 0
fi
echo "kiln: creating Python venv at $venv (TensorFlow oracle; takes a few minutes once)" >&2
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$root/scripts/requirements.txt" >&2
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps -r "$root/scripts/requirements-nodeps.txt" >&2
echo "$want" > "$stamp"
echo "$venv"
