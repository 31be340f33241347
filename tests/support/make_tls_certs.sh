#!/bin/sh
# SPDX-License-Identifier: MIT
# Makes throwaway TLS material for the tests in DIR (created if missing):
#   ca.crt            the trusted test CA (ca.key its key)
#   other-ca.crt      a CA that signed nothing we serve (for "not trusted")
#   server.crt/.key   DNS:localhost, IP:127.0.0.1, IP:::1, serverAuth
#   client.crt/.key   clientAuth, for servers that want a client certificate
#   expired.crt/.key  as server, valid 2020-01-01 .. 2020-01-02
#   future.crt/.key   as server, valid from 2099-01-01
#   evil.crt/.key     CN=evil.example (DNS:evil.example), signed by ca
#   self.crt/.key     CN=localhost, self-signed
# Dates are set with `openssl ca -startdate/-enddate`: `openssl x509
# -not_before` needs OpenSSL 3.2. Keys are P-256 (quick to make), mode 0600.
# Usage: make_tls_certs.sh DIR
# TLS_EXTRA_SAN (e.g. IP:10.77.0.2) adds names to server.crt (bench/run's
# round-trip mode serves TLS on such an address).
set -eu
dir=${1:?usage: make_tls_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077
mkdir -p newcerts
: >index.txt
echo 1000 >serial
cat >ca.cnf <<'CNF'
[ ca ]
default_ca = test_ca
[ test_ca ]
database = index.txt
new_certs_dir = newcerts
serial = serial
default_md = sha256
default_days = 30
policy = policy_any
unique_subject = no
copy_extensions = none
[ policy_any ]
commonName = supplied
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server_ext ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
[ evil_ext ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:evil.example
[ client_ext ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
CNF
if [ -n "${TLS_EXTRA_SAN:-}" ]; then
  sed -i "/^\[ server_ext \]/,/^\[/ s/^subjectAltName = .*/&, $TLS_EXTRA_SAN/" \
    ca.cnf
fi

newkey() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
}

# make_ca NAME CN
make_ca() {
  newkey "$1"
  openssl req -config ca.cnf -new -x509 -key "$1.key" -days 30 \
    -subj "/CN=$2" -extensions v3_ca -out "$1.crt"
}

# sign NAME CN EXTENSIONS [openssl ca date options...]
sign() {
  name=$1 cn=$2 ext=$3
  shift 3
  newkey "$name"
  openssl req -config ca.cnf -new -key "$name.key" -subj "/CN=$cn" \
    -out "$name.csr"
  openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key \
    -extensions "$ext" -notext -in "$name.csr" -out "$name.crt" "$@" \
    2>/dev/null
}

make_ca ca godislock-test-ca
make_ca other-ca godislock-other-ca
sign server localhost server_ext
sign client godislock-client client_ext
sign expired localhost server_ext -startdate 20200101000000Z \
  -enddate 20200102000000Z
sign future localhost server_ext -startdate 20990101000000Z \
  -enddate 20991231000000Z
sign evil evil.example evil_ext
newkey self
openssl req -config ca.cnf -new -x509 -key self.key -days 30 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -out self.crt
chmod 644 ./*.crt
