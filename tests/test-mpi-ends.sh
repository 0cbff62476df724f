#!/bin/sh
# test-mpi-ends.sh MPIRUN TEST-MPI-POOL: how an MPI job with a pool ends
# when a worker is lost (an item past its timeout) or dies. Open MPI
# cannot go on without a rank: either way the job must end, not hang,
# with a status that is not 0 and words that say why.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

set -u
mpirun=$1
program=$2
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# check NAME EXPECTED-OUTPUT... -- MPIRUN-ARGS...
check () {
  name=$1; shift
  want=""
  while [ "$1" != "--" ]; do want="$want
$1"; shift; done
  shift
  timeout 120 "$mpirun" --allow-run-as-root --oversubscribe "$@" >"$out" 2>&1
  status=$?
  if [ "$status" -eq 0 ] || [ "$status" -eq 124 ]; then
    echo "not ok - $name: mpirun ended with status $status (0: not ended by the loss; 124: hung)"
    failed=1
  fi
  echo "$want" | while IFS= read -r line; do
    [ -z "$line" ] && continue
    if ! grep -qF -- "$line" "$out"; then
      echo "not ok - $name: mpirun did not say “$line”"
      echo 1 >"$out.failed"
    fi
  done
  if [ -e "$out.failed" ]; then failed=1; rm -f "$out.failed"; fi
  echo "# $name: mpirun status $status; its output:"
  sed 's/^/#   /' "$out"
}

check "a lost worker, spawned" "the timeout was reported" "wpool: ending the MPI job" -- \
  -np 1 "$program" --expect-timeout
check "a lost worker, a rank of the job" "the timeout was reported" "wpool: ending the MPI job" -- \
  -np 3 "$program" --expect-timeout
check "a dead worker, spawned" "exited on signal 6" -- -np 1 "$program" --die
check "a dead worker, a rank of the job" "exited on signal 6" -- -np 3 "$program" --die

# A pool alive at exit: MPI finalizes, the workers are let go, the job
# ends normally.
for np in 1 3; do
  timeout 120 "$mpirun" --allow-run-as-root --oversubscribe -np "$np" "$program" --leak-pool >"$out" 2>&1
  status=$?
  if [ "$status" -ne 0 ] || ! grep -q "the pool is left alive at exit" "$out"; then
    echo "not ok - a pool alive at exit, -np $np: mpirun ended with status $status"
    sed 's/^/#   /' "$out"
    failed=1
  fi
done

if grep -q "the map returned after a worker died" "$out"; then
  echo "not ok - a map returned after its worker died: Open MPI went on without the rank"
  failed=1
fi

[ "$failed" -eq 0 ] && echo "ok - every job ended, and said why"
exit "$failed"
