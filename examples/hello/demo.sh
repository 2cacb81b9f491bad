#!/usr/bin/env bash
# make demo: build hello v1 and v2, import both as images, roll out v1 then v2 on
# the local provider, and show that the router answers v2 with no v1 process left.
# make stop (demo.sh stop): stop the worker a demo started.
#
# set -e stops at the first failing command; a test ([ … ]) must be an if, never the
# last `[ … ] && …` of the script, whose false would become the demo's exit status.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$PWD/bin
# imago's default home (internal/app): the same for make run, make demo and bin/imago.
export IMAGO_HOME=${IMAGO_HOME:-$HOME/.imago}
export TEMPORAL_ADDRESS=${TEMPORAL_ADDRESS:-127.0.0.1:7233}
PIDFILE=$IMAGO_HOME/worker.pid

# demo_worker prints the pid of the worker a demo started, if it still runs.
demo_worker() {
  local pid
  if [[ -f $PIDFILE ]] && pid=$(<"$PIDFILE") && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == imago-worker ]]; then
    echo "$pid"
  fi
}

if [[ ${1:-} == stop ]]; then
  pid=$(demo_worker)
  rm -f "$PIDFILE"
  if [[ -n $pid ]]; then
    kill "$pid"
    echo "stopped imago-worker (pid $pid)"
  else
    echo "no running worker was started by make demo"
  fi
  exit 0
fi

mkdir -p "$IMAGO_HOME"
# A worker with its embedded server, unless one already answers.
if ! "$BIN/imago" rollout list >/dev/null 2>&1; then
  echo "==> starting imago-worker (embedded Temporal + web UI), log: $IMAGO_HOME/worker.log"
  env -u TEMPORAL_ADDRESS "$BIN/imago-worker" >"$IMAGO_HOME/worker.log" 2>&1 &
  echo $! >"$PIDFILE"
  deadline=$((SECONDS + 90))
  until "$BIN/imago" rollout list >/dev/null 2>&1; do
    if ! kill -0 "$(<"$PIDFILE")" 2>/dev/null; then
      echo "imago-worker exited; its log:" >&2; tail -20 "$IMAGO_HOME/worker.log" >&2; exit 1
    fi
    if ((SECONDS > deadline)); then echo "imago-worker did not answer within 90s" >&2; exit 1; fi
    sleep 0.5
  done
fi

echo "==> v1: a plain build, imported as an image"
go build -ldflags "-X main.version=v1" -o "$IMAGO_HOME/build/v1/hello" ./examples/hello
V1=$("$BIN/imago" image import "$IMAGO_HOME/build/v1" --service hello --entrypoint ./hello)
echo "    v1 = $V1"
echo "==> v2: baked from source with the imago-local Packer builder, tested, published on channel latest"
V2=$("$BIN/imago" bake start -f examples/hello/bake.yaml --wait -o json | sed -n 's/.*"imageId": *"\(img-[0-9a-f]*\)".*/\1/p')
if [[ $V2 != img-* ]]; then
  echo "the bake printed no imageId; see: $BIN/imago bake status hello" >&2; exit 1
fi
echo "    v2 = $V2 (bake it again: same inputs, same image, from the cache)"

echo "==> rolling out v1"
"$BIN/imago" rollout start -f examples/hello/rollout.yaml --image "$V1" --wait
echo "==> rolling out v2 (blue/green; v1 stays warm for the soak, then is decommissioned)"
"$BIN/imago" rollout start -f examples/hello/rollout.yaml --image "$V2" --wait

echo "==> the router answers:"
curl -fsS http://127.0.0.1:9080/
echo
echo "service:  http://127.0.0.1:9080/"
echo "web UI:   http://127.0.0.1:8233/namespaces/default/workflows?query=ImagoService%3D%22hello%22"
echo "status:   $BIN/imago rollout status hello -e dev"
if [[ -n $(demo_worker) ]]; then
  echo "stop the worker with: make stop (instances and the router keep running, as VMs would)"
fi
