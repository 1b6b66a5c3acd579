#!/bin/sh
# Makes a private CA and the webhook's TLS certificate (for clusters without cert-manager); prints the kubectl steps.
#
# usage: deploy/webhook-cert.sh <out-dir> [service] [namespace] [days]
#   writes ca.crt, tls.crt, tls.key for <service>.<namespace>.svc (default laneway-control-plane.laneway-system.svc)
set -eu

out=${1:?usage: webhook-cert.sh <out-dir> [service] [namespace] [days]}
service=${2:-laneway-control-plane}
namespace=${3:-laneway-system}
days=${4:-825}
dns="$service.$namespace.svc"

mkdir -p "$out"
umask 077
# P-256 keys: small, fast, accepted by every Kubernetes API server.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "$days" \
  -subj "/CN=laneway webhook CA" -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj "/CN=$dns" -keyout "$out/tls.key" -out "$out/tls.csr" 2>/dev/null
# The API server checks the SAN, never the CN (Go's crypto/x509 since 1.15).
printf 'subjectAltName=DNS:%s,DNS:%s.cluster.local\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' "$dns" "$dns" > "$out/ext.cnf"
openssl x509 -req -in "$out/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
  -days "$days" -extfile "$out/ext.cnf" -out "$out/tls.crt" 2>/dev/null
rm -f "$out/tls.csr" "$out/ext.cnf" "$out/ca.srl"
chmod 0644 "$out/ca.crt" "$out/tls.crt"

ca_bundle=$(base64 < "$out/ca.crt" | tr -d '\n')
cat <<STEPS
wrote $out/ca.crt $out/tls.crt $out/tls.key for $dns; next:
  kubectl -n $namespace create secret tls laneway-webhook-tls --cert=$out/tls.crt --key=$out/tls.key
  kubectl patch mutatingwebhookconfiguration laneway-sidecar-injector --type=json -p \\
    '[{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"$ca_bundle"},{"op":"add","path":"/webhooks/1/clientConfig/caBundle","value":"$ca_bundle"}]'
STEPS
