#!/usr/bin/env bash
# A Ray cluster of several nodes on this one machine, to try multi-node placement without hardware.
#   cluster/local_cluster.sh start [N_WORKERS=2] [CPUS_PER_NODE=2]
#   RAY_ADDRESS=127.0.0.1:6379 genesis-dist demo     # shards SPREAD over the nodes
#   cluster/local_cluster.sh stop
# Each node is its own raylet and object store; `ray status` lists them.
set -euo pipefail
RAY="${RAY:-$(dirname "$0")/../.venv/bin/ray}"
command -v "$RAY" >/dev/null || RAY=ray
PORT=6379

case "${1:-}" in
  start)
    workers="${2:-2}"; cpus="${3:-2}"
    "$RAY" start --head --port="$PORT" --num-cpus="$cpus" --include-dashboard=false --disable-usage-stats \
      --min-worker-port=11000 --max-worker-port=11999
    for i in $(seq 1 "$workers"); do
      # a distinct node: its own ports, its own resources
      "$RAY" start --address="127.0.0.1:$PORT" --num-cpus="$cpus" --disable-usage-stats \
        --node-manager-port=$((6400 + 10 * i)) --object-manager-port=$((6401 + 10 * i)) \
        --min-worker-port=$((11000 + 1000 * i)) --max-worker-port=$((11999 + 1000 * i))
    done
    "$RAY" status --address="127.0.0.1:$PORT"
    echo "export RAY_ADDRESS=127.0.0.1:$PORT"
    ;;
  stop)
    "$RAY" stop
    ;;
  *)
    echo "usage: $0 start [N_WORKERS] [CPUS_PER_NODE] | stop" >&2
    exit 2
    ;;
esac
