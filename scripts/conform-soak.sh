#!/bin/sh
# Soak test of the conformance suite on the running kernel: `gmemkit conform` N times in a row
# (default 100) while LOAD busy loops (default: one per CPU) keep every CPU busy, counting the
# runs that do not exit 0. The output of each failing run is kept in $SOAK_DIR (default: a new
# temporary directory) for diagnosis. Needs a build (npm run build) and a usable /dev/kvm.
# Usage: scripts/conform-soak.sh [N] [LOAD]
set -u
N=${1:-100}
LOAD=${2:-$(nproc)}
cd "$(dirname "$0")/.." || exit 2
[ -f dist/src/cli/main.js ] || { echo "conform-soak: no build; run npm run build first" >&2; exit 2; }
DIR=${SOAK_DIR:-$(mktemp -d -t gmemkit-soak.XXXXXX)}
mkdir -p "$DIR"

pids=""
i=0
while [ "$i" -lt "$LOAD" ]; do
  sh -c 'while :; do :; done' &
  pids="$pids $!"
  i=$((i + 1))
done
stop_load() { for p in $pids; do kill "$p" 2>/dev/null; done; }
trap stop_load EXIT
trap 'exit 130' INT TERM

fails=0
start=$(date +%s)
run=1
while [ "$run" -le "$N" ]; do
  node bin/gmemkit.js conform >"$DIR/run-$run.txt" 2>&1
  rc=$?
  if [ "$rc" -ne 0 ]; then
    fails=$((fails + 1))
    echo "run $run failed (exit $rc): $DIR/run-$run.txt" >&2
  else
    rm -f "$DIR/run-$run.txt"
  fi
  run=$((run + 1))
done
end=$(date +%s)
echo "conform-soak: $N runs, $fails failed, $((end - start)) s, $LOAD busy loops on $(nproc) CPUs, kernel $(uname -r)"
[ "$fails" -eq 0 ]
