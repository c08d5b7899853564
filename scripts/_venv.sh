# Sourced by start.sh and test.sh: make .venv (Python 3.11+) and install a requirements file.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
ensure_requirements() {
    # Reinstall only when the requirements file changed since the last install.
    local file="$1" stamp=".venv/.installed-$(basename "$1")"
    if [ ! -f "$stamp" ] || ! cmp -s "$file" "$stamp"; then
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet -r "$file"
        cp "$file" "$stamp"
    fi
}
