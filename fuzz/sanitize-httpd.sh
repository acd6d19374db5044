#!/bin/sh
# Licensed under the Apache License, Version 2.0.
#
# apache2 for "make check-sanitize": the module is built with
# -fsanitize=address,undefined but /usr/sbin/apache2 is not, so the ASan
# runtime must be the first library loaded: preload gcc's libasan.  httpd
# itself frees little at exit, so leak detection is off here (the fuzzers
# and the CLI runs check leaks); every other report aborts the child and is
# written to CR_SANITIZE_LOG_DIR, which check-sanitize inspects.
libasan=$(gcc -print-file-name=libasan.so)
LD_PRELOAD="$libasan${LD_PRELOAD:+:$LD_PRELOAD}"
logdir=${CR_SANITIZE_LOG_DIR:-/tmp}
# A bounded quarantine (freed memory ASan holds back to catch use after
# free) lets the soak smoke allow for it in its memory bound.
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:quarantine_size_mb=${CR_SANITIZE_QUARANTINE_MB:-16}:log_path=$logdir/asan-httpd"
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logdir/ubsan-httpd"
export LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS
exec "${CR_HTTPD_REAL:-/usr/sbin/apache2}" "$@"
