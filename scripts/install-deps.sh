#!/bin/sh
# Install what building, the demo and the tests need on Debian 12, if it is
# missing.  Only apache2-bin (binaries and modules) is installed, not the
# apache2 package: no system Apache service is set up or started.
set -eu

PACKAGES="build-essential autoconf automake libtool pkg-config
apache2-bin apache2-dev apache2-utils libapr1-dev libaprutil1-dev
libjansson-dev libssl-dev check
python3 python3-pytest python3-requests
memcached redis-server
postgresql libaprutil1-dbd-pgsql libaprutil1-dbd-sqlite3 sqlite3 prometheus
nginx-light
chromium fonts-wqy-microhei wrk valgrind clang libclang-rt-14-dev cppcheck clang-tidy
curl ca-certificates"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
# Node.js (>= 18) for the SDK and browser tests; Debian's if none is there.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing="$missing nodejs npm"
fi

as_root() {
    if [ "$(id -u)" = "0" ]; then
        "$@"
    else
        sudo "$@"
    fi
}
if [ -n "$missing" ]; then
    echo "install-deps: installing:$missing"
    as_root apt-get update -q
    # No package's service is started on install (PostgreSQL, Prometheus,
    # nginx, memcached, Redis): the tests start their own, unprivileged,
    # on spare ports.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod 755 /usr/sbin/policy-rc.d
        trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    # The tests start their own memcached and Redis on spare ports and
    # never use a system service.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi
exit 0
