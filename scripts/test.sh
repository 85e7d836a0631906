#!/usr/bin/env bash
# Set up a virtual environment with the test requirements and run the whole test suite.
#
# The browser tests (tests/browser) drive Debian's Chromium at /usr/bin/chromium, and the
# download tests (tests/server/test_downloads_api.py) run GDAL's ogrinfo (Debian's gdal-bin)
# on the downloaded files, and the store tests start a PostgreSQL + PostGIS cluster of their own
# (Debian's postgresql-15-postgis-3); all are installed with apt when missing and this runs as root.
# Otherwise those tests skip, naming what is missing -- except with CI=true, where they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${GRIDMAP_VENV:-.venv}
CHROMIUM=/usr/bin/chromium

# Chromium, and a small CJK font so screenshots show Chinese, not boxes.  (fonts-wqy-microhei
# is 1.6 MB; fonts-noto-cjk would be 57 MB to download and 91 MB installed.)
missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
if ! { command -v fc-list >/dev/null && [ -n "$(fc-list :lang=zh family 2>/dev/null)" ]; }; then
    missing+=(fonts-wqy-microhei)
fi
# GDAL's command-line tools, a GDAL other than pyogrio's, check what analysts download
command -v ogrinfo >/dev/null || missing+=(gdal-bin)
# PostgreSQL + PostGIS: the store tests start a throwaway cluster of their own (tests/postgres.py)
PG_BIN=/usr/lib/postgresql/15/bin
{ [ -x "$PG_BIN/initdb" ] && [ -f /usr/share/postgresql/15/extension/postgis.control ]; } ||
    missing+=(postgresql-15-postgis-3)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "scripts/test.sh: installing ${missing[*]} with apt-get for the browser, download and store tests" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        if [ ! -x "$CHROMIUM" ]; then
            echo "scripts/test.sh: Chromium is not installed at $CHROMIUM and this is not root:" \
                 "the browser tests will $([ "${CI:-}" = true ] && echo FAIL || echo skip)." \
                 "Install it with: sudo apt-get install chromium" >&2
        elif [[ " ${missing[*]} " == *" fonts-wqy-microhei "* ]]; then
            echo "scripts/test.sh: no Chinese font (sudo apt-get install fonts-wqy-microhei):" \
                 "browser screenshots will show boxes for Chinese text" >&2
        fi
        if [[ " ${missing[*]} " == *" postgresql-15-postgis-3 "* ]]; then
            echo "scripts/test.sh: PostgreSQL 15 with PostGIS is not installed and this is not root:" \
                 "the PostGIS store tests will $([ "${CI:-}" = true ] && echo FAIL || echo skip)." \
                 "Install it with: sudo apt-get install postgresql-15-postgis-3" >&2
        fi
        if ! command -v ogrinfo >/dev/null; then
            echo "scripts/test.sh: GDAL's ogrinfo is not installed and this is not root:" \
                 "the download tests that run it will $([ "${CI:-}" = true ] && echo FAIL || echo skip)." \
                 "Install it with: sudo apt-get install gdal-bin" >&2
        fi
    fi
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
# the map's browser scripts that ship on npm only (Leaflet.VectorGrid), by the npm requirements.txt installs
"$VENV/bin/npm" ci --no-audit --no-fund --silent
set +e
# Two processes (GRIDMAP_TEST_PROCESSES), each taking a whole test file at a time, so a file's module
# fixtures (servers, browsers) are made once: much of the suite waits on servers and Chromium, not the CPU.
"$VENV/bin/python" -m pytest -n "${GRIDMAP_TEST_PROCESSES:-2}" --dist loadfile "$@"
status=$?
set -e
# pytest exits 5 when it collected no tests: that is a failure of the suite, not a pass
[ $status -eq 5 ] && echo "no tests were collected" >&2
exit $status
