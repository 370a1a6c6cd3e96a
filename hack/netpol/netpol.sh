#!/usr/bin/env bash
# The NetworkPolicy enforcer of the stack's real node, standalone until the stack starts it itself:
#   hack/netpol/netpol.sh build    # .stack/bin/slipway-netpol from this go.mod (kube-network-policies v0.8.0)
#   hack/netpol/netpol.sh up       # start it for node slipway-real-0 (needs root: nftables + nfqueue)
#   hack/netpol/netpol.sh status | down
# It acts in this machine's network namespace, where the real node's pod bridge (slipway0, 10.77.0.0/24) is, and
# only on packets of that node's pods that a NetworkPolicy selects (its own nftables table, slipway-netpol); its
# metrics listen on loopback. It fails open: when it stops, the pods' traffic flows again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${SLIPWAY_STACK_DIR:-$ROOT/.stack}"
BIN="$STATE/bin/slipway-netpol"
PIDFILE="$STATE/run/netpol.pid"
LOG="$STATE/logs/netpol.log"
KUBECONFIG_FILE="${SLIPWAY_NETPOL_KUBECONFIG:-$STATE/kube/admin.kubeconfig}"

running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

case "${1:-status}" in
  build)
    mkdir -p "$STATE/bin"
    (cd "$ROOT/hack/netpol" && CGO_ENABLED=0 go build -o "$BIN" .)
    echo "netpol: built $BIN"
    ;;
  up)
    if running; then echo "netpol: up (pid $(cat "$PIDFILE"))"; exit 0; fi
    [[ -x "$BIN" ]] || "$0" build
    [[ -f "$KUBECONFIG_FILE" ]] || { echo "netpol: no kubeconfig at $KUBECONFIG_FILE (is the stack up?)" >&2; exit 1; }
    mkdir -p "$STATE/run" "$STATE/logs"
    setsid "$BIN" --kubeconfig "$KUBECONFIG_FILE" --node slipway-real-0 >>"$LOG" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
    sleep 2
    if running; then echo "netpol: up (pid $(cat "$PIDFILE")), log $LOG"; else
      echo "netpol: exited at once; the end of $LOG:" >&2; tail -20 "$LOG" >&2; exit 1; fi
    ;;
  down)
    if running; then kill "$(cat "$PIDFILE")"; echo "netpol: stopped"; else echo "netpol: not running"; fi
    rm -f "$PIDFILE"
    ;;
  status)
    if running; then echo "netpol: up (pid $(cat "$PIDFILE"))"; else echo "netpol: down"; exit 1; fi
    ;;
  *) echo "usage: $0 build|up|down|status" >&2; exit 2 ;;
esac
