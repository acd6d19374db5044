#!/bin/sh
# Instructions per byte of the body inspection (cr_body.c) on the agent
# bodies of bench/agent_bodies.py, counted by callgrind.  Usage:
#   bench/body_callgrind.sh [source-tree]   (default: this tree)
# A source tree of an older commit (git worktree) measures its cr_body.c
# with the same harness and the same bodies.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
src=${1:-$here}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 -c "import sys; sys.path.insert(0, '$here/bench'); \
import agent_bodies; agent_bodies.make_bodies('$work')" >/dev/null
cc -O2 -g -I"$src" $(pkg-config --cflags apr-1) $(pkg-config --cflags jansson) \
    -o "$work/cr_bench_body" "$here/bench/cr_bench_body.c" "$src/cr_body.c" \
    "$src/cr_json.c" $(pkg-config --libs apr-1) -ljansson
printf '%-18s %9s %12s %8s\n' body bytes instructions 'per byte'
for b in claude_code codex_responses chat_1k plain_string; do
    f="$work/$b.json"
    valgrind --tool=callgrind --toggle-collect=bench_inspect \
        --callgrind-out-file="$work/cg.$b" "$work/cr_bench_body" "$f" \
        >/dev/null 2>"$work/vg.$b"
    ir=$(sed -n 's/^summary: *//p' "$work/cg.$b")
    bytes=$(wc -c < "$f")
    awk -v b="$b" -v n="$bytes" -v ir="$ir" \
        'BEGIN { printf "%-18s %9d %12d %8.2f\n", b, n, ir, ir / n }'
done
