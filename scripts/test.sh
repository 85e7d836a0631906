#!/usr/bin/env bash
# Set up a virtual environment with the test requirements and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${GRIDMAP_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
set +e
"$VENV/bin/python" -m pytest "$@"
status=$?
set -e
# pytest exits 5 when it collected no tests: that is a failure of the suite, not a pass
[ $status -eq 5 ] && echo "no tests were collected" >&2
exit $status
