#!/bin/sh
# Generates the TLS test fixtures in testing/certs/ with openssl (1.1.1 or 3.x).
#
#   sh scripts/gen-test-certs.sh [out-dir]
#
# Files (EC P-256 keys, PEM):
#   ca.pem                      test CA that signs the certificates below
#   server.pem, server-key.pem  127.0.0.1, ::1 and localhost (SAN IP + DNS)
#   wrong-host.pem, -key.pem    signed by the CA, valid, but for wrong.invalid only
#   expired.pem, -key.pem       signed by the CA for 127.0.0.1/localhost,
#                               valid 2001-01-01 to 2001-01-02 only
#   untrusted.pem, -key.pem     self-signed for 127.0.0.1/localhost: no CA vouches
#
# Everything except expired.pem is valid for 20 years. The CA key is thrown
# away, so nobody can sign more with it; run the script again to replace the
# whole set. These keys are public test fixtures: never use them for anything
# else.
set -eu

OUT=${1:-"$(dirname "$0")/../testing/certs"}
DAYS=7300
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

# Extensions for leaf certificates: rustls (Deno, Bun) refuses a leaf that
# says CA:TRUE and wants serverAuth in the extended key usage.
leaf_ext() {
  cat > "$WORK/$1.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $2
EOF
}

# The CA.
key "$WORK/ca-key.pem"
cat > "$WORK/ca.ext" <<EOF
[req]
distinguished_name = dn
x509_extensions = ca
prompt = no
[dn]
CN = nodewire test CA
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
openssl req -new -x509 -config "$WORK/ca.ext" -key "$WORK/ca-key.pem" \
  -sha256 -days "$DAYS" -out "$OUT/ca.pem"

# A CSR for a leaf: csr NAME CN
csr() {
  key "$OUT/$1-key.pem"
  openssl req -new -key "$OUT/$1-key.pem" -subj "/CN=$2" -out "$WORK/$1.csr"
}

LOCAL="DNS:localhost, IP:127.0.0.1, IP:::1"

# server and wrong-host: signed by the CA, valid from now on.
for spec in "server|localhost|$LOCAL" "wrong-host|wrong.invalid|DNS:wrong.invalid"; do
  name=${spec%%|*}; rest=${spec#*|}; cn=${rest%%|*}; san=${rest#*|}
  csr "$name" "$cn"
  leaf_ext "$name" "$san"
  openssl x509 -req -in "$WORK/$name.csr" -CA "$OUT/ca.pem" \
    -CAkey "$WORK/ca-key.pem" -CAcreateserial -CAserial "$WORK/ca.srl" \
    -sha256 -days "$DAYS" -extfile "$WORK/$name.ext" -out "$OUT/$name.pem" \
    2>/dev/null
done

# expired: `openssl x509 -days` cannot backdate, `openssl ca` can.
csr expired localhost
leaf_ext expired "$LOCAL"
mkdir -p "$WORK/ca-db"
: > "$WORK/ca-db/index.txt"
echo 1000 > "$WORK/ca-db/serial"
cat > "$WORK/ca.cnf" <<EOF
[ca]
default_ca = test
[test]
dir = $WORK/ca-db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
EOF
openssl ca -batch -config "$WORK/ca.cnf" -cert "$OUT/ca.pem" \
  -keyfile "$WORK/ca-key.pem" -in "$WORK/expired.csr" \
  -startdate 20010101000000Z -enddate 20010102000000Z \
  -extfile "$WORK/expired.ext" -notext -out "$OUT/expired.pem" 2>/dev/null

# untrusted: self-signed, so only a client that skips verification takes it.
key "$OUT/untrusted-key.pem"
cat > "$WORK/untrusted.cnf" <<EOF
[req]
distinguished_name = dn
x509_extensions = leaf
prompt = no
[dn]
CN = localhost
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = $LOCAL
EOF
openssl req -new -x509 -config "$WORK/untrusted.cnf" \
  -key "$OUT/untrusted-key.pem" -sha256 -days "$DAYS" -out "$OUT/untrusted.pem"

for f in server wrong-host expired untrusted; do
  printf '%s: ' "$f"
  openssl x509 -in "$OUT/$f.pem" -noout -enddate
done
