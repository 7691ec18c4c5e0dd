#!/usr/bin/env bash
# Makes the throwaway certificates config/edge-tls.yaml points at, so the
# example passes `detour check` out of the box. NEVER use these in production:
# the private keys are public (they are in this repository). Make your own
# with your CA; this script shows the shape openssl needs.
#   dc-ca.pem           the data centers' private CA (sites.X.tls.ca)
#   edge.crt, edge.key  what detour serves to clients and on the admin API (chain: leaf + CA)
#   edge-ca.pem         the CA clients trust for edge.crt
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
days=36500
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout edge-ca.key -out edge-ca.pem -subj /CN=detour-example-edge-ca -days "$days" 2>/dev/null
openssl req -x509 "${ec[@]}" -keyout dc-ca.key -out dc-ca.pem -subj /CN=detour-example-dc-ca -days "$days" 2>/dev/null
openssl req -new "${ec[@]}" -keyout edge.key -out edge.csr -subj /CN=ceir.example.go.id 2>/dev/null
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:ceir.example.go.id,DNS:localhost,IP:127.0.0.1\n' > edge.ext
openssl x509 -req -in edge.csr -CA edge-ca.pem -CAkey edge-ca.key -set_serial 1 -days "$days" -extfile edge.ext -out edge.leaf 2>/dev/null
cat edge.leaf edge-ca.pem > edge.crt
# The CA keys are not needed by detour: do not leave them lying around.
rm -f edge.csr edge.ext edge.leaf edge-ca.key dc-ca.key
