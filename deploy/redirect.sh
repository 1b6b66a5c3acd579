#!/bin/sh
# Laneway's init container: iptables nat rules sending inbound TCP for each app port to its sidecar port; idempotent.
#
# usage: laneway-redirect [--remove] <sidecarPort>:<appPort> ...     (or LANEWAY_PORTS=15001:8080,15002:9090)
#
# Design (README "Traffic redirection"):
# - One chain of our own, LANEWAY_INBOUND, in the nat table, jumped to from PREROUTING. PREROUTING only
#   sees packets that arrive from outside the pod; the sidecar's own connections to the app on
#   127.0.0.1 are locally generated (nat OUTPUT, which we leave alone), so they reach the app directly
#   and never loop back into the sidecar. Nothing else in the pod's network changes.
# - REDIRECT keeps the connection's original destination in conntrack, so replies go back out as the
#   app port: clients and the Service see no difference.
# - The chain is written with iptables-restore --noflush: declaring it flushes and refills it in one
#   commit, so running again (a restarted init container) replaces the rules instead of adding
#   duplicates, and no packet sees a half-written chain.
# - IPv4 only: the sidecar listens on 0.0.0.0. IPv6 traffic reaches the app directly (README "Limits").
set -eu

CHAIN=LANEWAY_INBOUND
# iptables-nft by default; LANEWAY_IPTABLES=iptables-legacy on nodes whose kernel lacks nf_tables.
IPTABLES=${LANEWAY_IPTABLES:-iptables}
IPTABLES_RESTORE=${LANEWAY_IPTABLES_RESTORE:-${IPTABLES}-restore}

die() {
  echo "laneway-redirect: $*" >&2
  exit 2
}

mode=install
specs=""
for arg in "$@"; do
  case "$arg" in
    --remove) mode=remove ;;
    -h|--help)
      sed -n '4p' "$0" | sed 's/^# //'
      exit 0
      ;;
    -*) die "unknown flag '$arg'" ;;
    *) specs="$specs $arg" ;;
  esac
done
if [ -z "$specs" ] && [ -n "${LANEWAY_PORTS:-}" ]; then
  specs=$(echo "$LANEWAY_PORTS" | tr ',' ' ')
fi

valid_port() {
  case "$1" in
    ''|*[!0-9]*) return 1 ;;
  esac
  [ "${#1}" -le 5 ] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]
}

rules=""
seen_app=" "
for spec in $specs; do
  listen=${spec%%:*}
  app=${spec#*:}
  if [ "$listen" = "$spec" ] || ! valid_port "$listen" || ! valid_port "$app"; then
    die "expected <sidecarPort>:<appPort>, got '$spec'"
  fi
  [ "$listen" != "$app" ] || die "'$spec' would redirect a port to itself"
  case "$seen_app" in
    *" $app "*) die "app port $app given twice" ;;
  esac
  seen_app="$seen_app$app "
  rules="$rules-A $CHAIN -p tcp -m tcp --dport $app -j REDIRECT --to-ports $listen
"
done

jump_present() {
  "$IPTABLES" -w -t nat -C PREROUTING -p tcp -j "$CHAIN" 2>/dev/null
}

if [ "$mode" = remove ]; then
  while jump_present; do
    "$IPTABLES" -w -t nat -D PREROUTING -p tcp -j "$CHAIN"
  done
  if "$IPTABLES" -w -t nat -S "$CHAIN" >/dev/null 2>&1; then
    "$IPTABLES" -w -t nat -F "$CHAIN"
    "$IPTABLES" -w -t nat -X "$CHAIN"
  fi
  echo "laneway-redirect: removed chain $CHAIN and its PREROUTING jump"
  exit 0
fi

[ -n "$rules" ] || die "no ports: give <sidecarPort>:<appPort> arguments or LANEWAY_PORTS"

jump=""
jump_present || jump="-A PREROUTING -p tcp -j $CHAIN
"
printf '*nat\n:%s - [0:0]\n%s%sCOMMIT\n' "$CHAIN" "$rules" "$jump" | "$IPTABLES_RESTORE" -w --noflush

echo "laneway-redirect: installed (nat table):"
"$IPTABLES" -w -t nat -S PREROUTING | grep -- "-j $CHAIN\$" | sed 's/^/  /'
"$IPTABLES" -w -t nat -S "$CHAIN" | sed 's/^/  /'
