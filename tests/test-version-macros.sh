#!/bin/sh
# The version macros, as an application sees them: WPOOL_VERSION_MAX_ALLOWED
# makes API newer than it warn, WPOOL_VERSION_MIN_REQUIRED makes API
# deprecated in or before it warn, and nonsense settings fail at once.
# Each case compiles a small program against the headers with
# -Werror=deprecated-declarations and checks that it builds, or fails for
# the right reason.
#
#   test-version-macros.sh SRCDIR BUILDDIR CC [CC ARGS...]
set -u
srcdir=$1 builddir=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags="-I$srcdir -I$builddir $(pkg-config --cflags gio-2.0) -Werror=deprecated-declarations -fsyntax-only"
n=0 failed=0
echo "TAP version 13"

# check PROGRAM NAME EXPECT(ok|PATTERN) CC [ARGS...]
check () {
  program=$1 name=$2 expect=$3
  shift 3
  n=$((n + 1))
  printf '%s\n' "$program" > "$tmp/t.c"
  if "$@" $flags -o /dev/null "$tmp/t.c" > "$tmp/out" 2>&1; then
    result=ok
  else
    result=failed
  fi
  if [ "$expect" = ok ] && [ "$result" = ok ]; then
    echo "ok $n $name"
  elif [ "$expect" != ok ] && [ "$result" = failed ] && grep -q -- "$expect" "$tmp/out"; then
    echo "ok $n $name"
  else
    echo "not ok $n $name (expected: $expect)"
    sed 's/^/# /' "$tmp/out"
    failed=$((failed + 1))
  fi
}

uses_0_2='#include <wpool.h>
int main (int argc, char **argv) { return !wpool_worker_serve ((const char * const *) argv, 0, NULL, NULL, NULL) + argc * 0; }'
uses_0_1='#include <wpool.h>
int main (void) { WpoolPool *p = wpool_pool_new (2, WPOOL_START_METHOD_THREADING); g_object_unref (p); return 0; }'
# A symbol deprecated in 0.2, as a later version would mark one.
deprecated='#include <wpool.h>
WPOOL_DEPRECATED_IN_0_2_FOR (wpool_pool_new) void old_api (void);
int main (void) { old_api (); return 0; }'

check "$uses_0_2" "0.2 API with the headers' defaults" ok "$@"
check "$uses_0_1" "0.1 API allowing only 0.1" ok "$@" \
  -DWPOOL_VERSION_MIN_REQUIRED=WPOOL_VERSION_0_1 -DWPOOL_VERSION_MAX_ALLOWED=WPOOL_VERSION_0_1
check "$uses_0_2" "0.2 API allowing only 0.1 warns" "Not available before 0.2" "$@" \
  -DWPOOL_VERSION_MIN_REQUIRED=WPOOL_VERSION_0_1 -DWPOOL_VERSION_MAX_ALLOWED=WPOOL_VERSION_0_1
check "$uses_0_2" "0.2 API requiring 0.1 allows up to the headers" ok "$@" -DWPOOL_VERSION_MIN_REQUIRED=WPOOL_VERSION_0_1
check "$deprecated" "API deprecated in 0.2 warns when 0.2 is required" "Use 'wpool_pool_new' instead" "$@" -DWPOOL_VERSION_MIN_REQUIRED=WPOOL_VERSION_0_2
check "$deprecated" "API deprecated in 0.2 is quiet when 0.1 is still supported" ok "$@" -DWPOOL_VERSION_MIN_REQUIRED=WPOOL_VERSION_0_1
check "$deprecated" "WPOOL_DISABLE_DEPRECATION_WARNINGS" ok "$@" -DWPOOL_DISABLE_DEPRECATION_WARNINGS
check "$uses_0_1" "MAX_ALLOWED below MIN_REQUIRED is refused" "must be >= WPOOL_VERSION_MIN_REQUIRED" "$@" \
  -DWPOOL_VERSION_MIN_REQUIRED=WPOOL_VERSION_0_2 -DWPOOL_VERSION_MAX_ALLOWED=WPOOL_VERSION_0_1
defaults='#include <wpool.h>
G_STATIC_ASSERT (WPOOL_VERSION_MIN_REQUIRED == WPOOL_ENCODE_VERSION (WPOOL_MAJOR_VERSION, WPOOL_MINOR_VERSION, 0));
G_STATIC_ASSERT (WPOOL_VERSION_MAX_ALLOWED == WPOOL_VERSION_MIN_REQUIRED);
G_STATIC_ASSERT (WPOOL_VERSION_0_1 < WPOOL_VERSION_0_2 && WPOOL_VERSION_0_2 <= WPOOL_VERSION);
int main (void) { return 0; }'
check "$defaults" "both default to the version of the headers" ok "$@"

echo "1..$n"
[ "$failed" -eq 0 ]
