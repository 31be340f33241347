#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# `godislock run` over rediss:// against a redis-server with a TLS port and
# throwaway certificates. The test CA is trusted through SSL_CERT_FILE,
# which OpenSSL's default verify paths honour.
bats_require_minimum_version 1.5.0
load helpers

setup() {
  unset GODISLOCK_PASSWORD REDISCLI_AUTH SSL_CERT_FILE SSL_CERT_DIR
}

@test "rediss://localhost: runs the command and releases the lock" {
  start_redis_tls
  SSL_CERT_FILE=$TLS_DIR/ca.crt run --separate-stderr "$GODISLOCK" run \
    --name tls -- sh -c 'redis-cli -p "$1" exists "godislock:{tls}"' sh \
    "$REDIS_PORT"
  assert_success
  assert_output 1
  assert_equal "$stderr" ""
  assert_no_lock_key
}

@test "rediss://127.0.0.1: the certificate's IP address entry is checked" {
  start_redis_tls
  GODISLOCK_URL="rediss://127.0.0.1:$REDIS_TLS_PORT" \
    SSL_CERT_FILE=$TLS_DIR/ca.crt run "$GODISLOCK" run --name tls -- echo ran
  assert_success
  assert_output ran
}

@test "an untrusted server certificate: 69, one line, the command not run" {
  start_redis_tls
  run --separate-stderr "$GODISLOCK" run --name tls -- echo ran
  assert_equal "$status" 69
  assert_output ""
  assert_equal "$stderr" "godislock: error: cannot connect to \
rediss://localhost:$REDIS_TLS_PORT: TLS handshake failed: server certificate \
not trusted: self-signed certificate in certificate chain (CN=godislock-test-ca)"
}

@test "a certificate for another host name: 69" {
  start_redis_tls evil
  SSL_CERT_FILE=$TLS_DIR/ca.crt run --separate-stderr "$GODISLOCK" run \
    --name tls -- echo ran
  assert_equal "$status" 69
  assert_output ""
  assert_equal "$stderr" "godislock: error: cannot connect to \
rediss://localhost:$REDIS_TLS_PORT: TLS handshake failed: server certificate \
is not for 'localhost' (CN=evil.example)"
}

@test "an expired server certificate: 69" {
  start_redis_tls expired
  SSL_CERT_FILE=$TLS_DIR/ca.crt run --separate-stderr "$GODISLOCK" run \
    --name tls -- echo ran
  assert_equal "$status" 69
  assert_equal "$stderr" "godislock: error: cannot connect to \
rediss://localhost:$REDIS_TLS_PORT: TLS handshake failed: server certificate \
has expired (not valid after 2020-01-02 00:00:00 UTC; CN=localhost)"
}

@test "redis:// to a TLS port: 69, with a hint to use rediss://" {
  start_redis_tls
  GODISLOCK_URL="redis://127.0.0.1:$REDIS_TLS_PORT" run --separate-stderr \
    "$GODISLOCK" run --name tls -- echo ran
  assert_equal "$status" 69
  assert_output ""
  assert_regex "$stderr" "^godislock: error: redis://127.0.0.1:$REDIS_TLS_PORT: \
.*; the server may require TLS \(use rediss://\)$"
}

@test "rediss:// to a plaintext port: 69, the server may not speak TLS" {
  start_redis_tls
  GODISLOCK_URL="rediss://127.0.0.1:$REDIS_PORT" \
    SSL_CERT_FILE=$TLS_DIR/ca.crt run --separate-stderr "$GODISLOCK" run \
    --connect-timeout 1s --name tls -- echo ran
  assert_equal "$status" 69
  assert_output ""
  # Redis reads the ClientHello as an inline command: it answers garbage
  # or waits for a newline that may never come.
  assert_regex "$stderr" "^godislock: error: cannot connect to \
rediss://127.0.0.1:$REDIS_PORT: TLS handshake (failed: the server does not \
speak TLS \(.*\)|timed out \(no answer: the server may not speak TLS\))$"
}

@test "the command inherits no descriptor of the TLS connections" {
  start_redis_tls
  # No pipeline in the command: the shell's own pipe to a `| sort` would
  # show up in its descriptor list while ls reads it.
  SSL_CERT_FILE=$TLS_DIR/ca.crt with_std_fds_only "$GODISLOCK" run \
    --name tls -- sh -c \
    'find /proc/$$/fd -mindepth 1 -maxdepth 1 -printf "%f\n"; :' \
    >"$BATS_TEST_TMPDIR/fds"
  run sort -n "$BATS_TEST_TMPDIR/fds"
  assert_output $'0\n1\n2'
}
