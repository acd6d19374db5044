#!/bin/bash
# Build out of tree in ./build (or $CR_BUILD_DIR): module, CLI, unit tests.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${CR_BUILD_DIR:-$top/build}
cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
    autoreconf -fi >/dev/null
fi
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ] || [ "$top/configure" -nt Makefile ]; then
    "$top/configure" -q ${CR_CONFIGURE_FLAGS:-}
fi
make -j"$(nproc)" >/dev/null
echo "build: $build/.libs/mod_clawdrouter.so and $build/clawdrouter-keys"
