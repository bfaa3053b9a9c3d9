#!/usr/bin/env bash
# The slim reader without a Docker engine: a fresh venv gets what docker/reader.Dockerfile
# installs (requirements-reader.txt, then the package with --no-deps), passes a run-time
# check before anything else is added, then gets the test tools and runs the reader's tests,
# one file at a time. Prints the slim venv's size next to the full one's.
# Usage: tests/reader_slim/check.sh [test files...]   (default: the reader's test files)
# Environment: PYTHON (python3.11), NEWSREC_READER_SLIM_VENV (/tmp/newsrec-reader-slim),
#              FULL_VENV (.venv, for the size comparison only).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3.11}
VENV=${NEWSREC_READER_SLIM_VENV:-/tmp/newsrec-reader-slim}
FULL_VENV=${FULL_VENV:-$ROOT/.venv}
PIP=(--disable-pip-version-check -q)
TESTS=("$@")
if [ ${#TESTS[@]} -eq 0 ]; then
  TESTS=(tests/integration/test_reader.py tests/reliability/test_reader_bad_input.py
         tests/reliability/test_reader_role.py tests/reliability/test_reader_fuzz.py tests/integration/test_export.py)
fi
# The tests' own tools, at the pinned versions (requirements.txt, requirements-dev.txt); nothing the
# reader imports at run time.
TEST_TOOLS=(pytest pgserver httpx hypothesis schemathesis)

echo "== requirements-reader.txt pins the versions of requirements.txt"
"$PYTHON" - <<'PY'
import re, sys
def pins(path):
    out = {}
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return out
slim, full = pins("requirements-reader.txt"), pins("requirements.txt")
bad = {n: (v, full.get(n)) for n, v in slim.items() if full.get(n) != v}
if bad:
    sys.exit(f"requirements-reader.txt differs from requirements.txt (slim, full): {bad}")
print(f"{len(slim)} pins, all as in requirements.txt")
PY

echo "== fresh venv $VENV: requirements-reader.txt + the package (--no-deps), as the image"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install "${PIP[@]}" -r requirements-reader.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
"$VENV/bin/pip" install "${PIP[@]}" --no-deps -e . 2>&1 | { grep -v '^WARNING: Location' || true; }
"$VENV/bin/pip" check
RUNTIME_SIZE=$(du -sm "$VENV" | cut -f1)

echo "== run time, before any test tool is installed"
(cd /tmp && "$VENV/bin/python" "$ROOT/tests/reader_slim/runtime_check.py")
"$VENV/bin/newsrec" reader --help > /dev/null && echo "newsrec reader --help: ok"

echo "== test tools: ${TEST_TOOLS[*]}"
DEV_PINS="$(mktemp)"
grep -v '^-r' requirements-dev.txt > "$DEV_PINS"
"$VENV/bin/pip" install "${PIP[@]}" -c requirements.txt -c "$DEV_PINS" "${TEST_TOOLS[@]}" 2>&1 | { grep -v '^WARNING: Location' || true; }
status=0
for test in "${TESTS[@]}"; do
  echo "== $test"
  "$VENV/bin/python" -m pytest -p no:xdist -p no:cacheprovider -q "$test" || status=1
done

echo "== sizes"
echo "slim venv, run time only: ${RUNTIME_SIZE} MB; with the test tools: $(du -sm "$VENV" | cut -f1) MB"
[ -d "$FULL_VENV" ] && echo "full venv ($FULL_VENV): $(du -sm "$FULL_VENV" | cut -f1) MB"
exit $status
