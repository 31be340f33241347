#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# etcds://: TLS to etcd's client port, checked like rediss:// (the chain
# against OpenSSL's trust store or SSL_CERT_FILE, and the host name).
bats_require_minimum_version 1.5.0
load helpers
load etcd_helpers

setup() {
  tls_certs
}

teardown() {
  terminate_all_children
  stop_etcd
}

@test "etcds: a run over TLS with the test CA trusted" {
  ETCD_TLS_CERT=server start_etcd
  run --separate-stderr env SSL_CERT_FILE="$TLS_DIR/ca.crt" "$GODISLOCK" run \
    --url "etcds://localhost:$ETCD_CLIENT_PORT" --name t -- \
    sh -c 'echo "fence $GODISLOCK_FENCE"'
  assert_success
  assert_output --regexp '^fence [1-9][0-9]*$'
  run env SSL_CERT_FILE="$TLS_DIR/ca.crt" "$GODISLOCK" status \
    --url "etcds://127.0.0.1:$ETCD_CLIENT_PORT" t
  assert_equal "$status" 1
  assert_output "lock 't': free"
}

@test "etcds: an unknown CA, another host name, or plain etcd: 69, one line" {
  ETCD_TLS_CERT=server start_etcd
  run --separate-stderr env SSL_CERT_FILE="$TLS_DIR/other-ca.crt" \
    "$GODISLOCK" run --url "etcds://localhost:$ETCD_CLIENT_PORT" -- true
  assert_equal "$status" 69
  assert_equal "${#stderr_lines[@]}" 1
  assert_regex "$stderr" "^godislock: error: etcd localhost:$ETCD_CLIENT_PORT: .*certificate"
  stop_etcd
  ETCD_TLS_CERT=evil start_etcd
  run --separate-stderr env SSL_CERT_FILE="$TLS_DIR/ca.crt" \
    "$GODISLOCK" run --url "etcds://localhost:$ETCD_CLIENT_PORT" -- true
  assert_equal "$status" 69
  assert_regex "$stderr" "^godislock: error: etcd localhost:$ETCD_CLIENT_PORT: .*(certificate|name)"
  stop_etcd
  ETCD_TLS_CERT= start_etcd
  run --separate-stderr env SSL_CERT_FILE="$TLS_DIR/ca.crt" \
    "$GODISLOCK" run --url "etcds://127.0.0.1:$ETCD_CLIENT_PORT" -- true
  assert_equal "$status" 69
  assert_equal "${#stderr_lines[@]}" 1
}

@test "etcds: --sni NAME: the certificate is checked against NAME, the URL's host is connected to" {
  ETCD_TLS_CERT=evil start_etcd
  run --separate-stderr env SSL_CERT_FILE="$TLS_DIR/ca.crt" "$GODISLOCK" run \
    --url "etcds://127.0.0.1:$ETCD_CLIENT_PORT" --sni evil.example --name s -- \
    sh -c 'echo "fence $GODISLOCK_FENCE"'
  assert_success
  assert_output --regexp '^fence [1-9][0-9]*$'
  # Another name than the certificate's: refused, naming the endpoint.
  run --separate-stderr env SSL_CERT_FILE="$TLS_DIR/ca.crt" "$GODISLOCK" run \
    --url "etcds://127.0.0.1:$ETCD_CLIENT_PORT" --sni localhost -- true
  assert_equal "$status" 69
  assert_equal "${#stderr_lines[@]}" 1
  assert_regex "$stderr" "^godislock: error: etcd 127.0.0.1:$ETCD_CLIENT_PORT: .*(certificate|name)"
}
