#!/usr/bin/env bash
# A Ray cluster of several nodes on this one machine, to try multi-node placement without hardware.
#   cluster/local_cluster.sh start [N_WORKERS=2] [CPUS_PER_NODE=2]
#   RAY_ADDRESS=127.0.0.1:6379 RAY_AUTH_MODE=token genesis-dist demo   # shards SPREAD over the nodes
#   cluster/local_cluster.sh stop                   # `ray stop`: ends EVERY Ray process on this machine
#   cluster/local_cluster.sh token                  # only make sure there is a Ray token (start does)
# Each node is its own raylet and object store; `ray status` lists them. The dashboard is off.
set -euo pipefail
RAY="${RAY:-$(dirname "$0")/../.venv/bin/ray}"
command -v "$RAY" >/dev/null || RAY=ray
PORT=6379
# Ray 2.5x+ secures a `ray start` cluster with a token (~/.ray/auth_token); nodes and drivers must agree
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"

ensure_token() {
  # Ray looks for $RAY_AUTH_TOKEN, then the file $RAY_AUTH_TOKEN_PATH, then ~/.ray/auth_token
  if [[ -n "${RAY_AUTH_TOKEN:-}" || -n "${RAY_AUTH_TOKEN_PATH:-}" || -s "$HOME/.ray/auth_token" ]]; then
    return
  fi
  # readable by this user only (Ray writes it with the umask's mode); the token is not printed
  (umask 077 && "$RAY" get-auth-token --generate >/dev/null)
  echo "created a Ray token in $HOME/.ray/auth_token" >&2
}

case "${1:-}" in
  token)
    ensure_token
    ;;
  start)
    ensure_token
    workers="${2:-2}"; cpus="${3:-2}"
    "$RAY" start --head --port="$PORT" --num-cpus="$cpus" --include-dashboard=false --disable-usage-stats \
      --min-worker-port=11000 --max-worker-port=11999
    for i in $(seq 1 "$workers"); do
      # a distinct node: its own ports, its own resources
      "$RAY" start --address="127.0.0.1:$PORT" --num-cpus="$cpus" --disable-usage-stats \
        --node-manager-port=$((6400 + 10 * i)) --object-manager-port=$((6401 + 10 * i)) \
        --min-worker-port=$((11000 + 1000 * i)) --max-worker-port=$((11999 + 1000 * i))
    done
    sleep 3  # let the workers register
    "$RAY" status --address="127.0.0.1:$PORT"
    echo "export RAY_ADDRESS=127.0.0.1:$PORT RAY_AUTH_MODE=$RAY_AUTH_MODE"
    ;;
  stop)
    "$RAY" stop
    ;;
  *)
    echo "usage: $0 start [N_WORKERS] [CPUS_PER_NODE] | stop | token" >&2
    exit 2
    ;;
esac
