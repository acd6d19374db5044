#!/bin/bash
# The whole test suite: installs what is missing, builds, then runs the unit
# tests (libcheck), the integration tests against real Apache httpd servers
# (pytest), the SDK and browser tests (node, started from pytest) and short
# smokes of the fuzzers and benchmarks.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export CR_BUILD_DIR="${CR_BUILD_DIR:-$top/build}"

"$top/scripts/install-deps.sh"
"$top/scripts/build.sh"

echo "== unit tests (make check)"
make -C "$CR_BUILD_DIR" check || {
    cat "$CR_BUILD_DIR"/tests/unit/*.log 2>/dev/null || true
    exit 1
}

echo "== node packages (npm ci)"
if [ ! -d tests/js/node_modules ] || [ tests/js/package-lock.json -nt tests/js/node_modules ]; then
    (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== integration tests (pytest)"
/usr/bin/python3 -m pytest -c tests/pytest.ini tests "$@"

# The whole suite under ASan+UBSan is "make check-sanitize" (long); here a
# smoke of it: the request paths that take outside input.
echo "== sanitizer smoke (ASan+UBSan build, gateway suites)"
make -C "$CR_BUILD_DIR" check-sanitize SANITIZE_PYTEST_ARGS="\
tests/integration/test_gateway_forward.py \
tests/integration/test_gateway_errors.py \
tests/integration/test_badinput.py \
tests/integration/test_hostile.py \
tests/integration/test_multipart.py \
tests/integration/test_gateway_keycache.py"
