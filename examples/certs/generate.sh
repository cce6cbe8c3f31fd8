#!/usr/bin/env bash
# Regenerates the TEST-ONLY certificates in this folder: a self-signed test
# CA and a certificate signed by it for example.com, *.example.com and
# localhost (plus 127.0.0.1 and ::1). The private keys are published in the
# repository: never use these anywhere but a local lab.
#
# Usage: examples/certs/generate.sh   (needs openssl)
set -euo pipefail
cd "$(dirname "$0")"

days=3650
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The CA: ECDSA P-256, CA:TRUE, may sign certificates only.
openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca.key"
openssl req -x509 -new -key "$work/ca.key" -sha256 -days "$days" \
  -subj "/O=gtm TEST ONLY/CN=gtm test CA (do not trust)" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$work/ca.pem"

# The server certificate for the example zone and loopback.
openssl ecparam -name prime256v1 -genkey -noout -out "$work/leaf.key"
openssl req -new -key "$work/leaf.key" -subj "/O=gtm TEST ONLY/CN=example.com" -out "$work/leaf.csr"
cat > "$work/leaf.ext" <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:example.com,DNS:*.example.com,DNS:localhost,IP:127.0.0.1,IP:::1
EXT
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -sha256 -days "$days" -extfile "$work/leaf.ext" -out "$work/leaf.pem"

# PKCS#8 keys; the served chain is the leaf then the CA.
openssl pkcs8 -topk8 -nocrypt -in "$work/ca.key" -out ca.key
openssl pkcs8 -topk8 -nocrypt -in "$work/leaf.key" -out example.com.key
cp "$work/ca.pem" ca.pem
cat "$work/leaf.pem" "$work/ca.pem" > example.com.pem
chmod 644 ca.pem example.com.pem
chmod 600 ca.key example.com.key
openssl x509 -in example.com.pem -noout -subject -ext subjectAltName -enddate
