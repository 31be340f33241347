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

# --- The TLS options and their environment variables ---

# The run just made was refused at the TLS handshake: exit 69, no output,
# one line whose cause matches the extended regex $1.
assert_handshake_refused() {
  assert_equal "$status" 69
  assert_output ""
  assert_regex "$stderr" "^godislock: error: cannot connect to \
rediss://localhost:$REDIS_TLS_PORT: TLS handshake failed: $1\$"
}

@test "--cacert trusts the test CA without SSL_CERT_FILE; status and release too" {
  start_redis_tls
  run --separate-stderr "$GODISLOCK" run --cacert "$TLS_DIR/ca.crt" \
    --name tls -- echo ran
  assert_success
  assert_output ran
  assert_equal "$stderr" ""
  run "$GODISLOCK" status --cacert "$TLS_DIR/ca.crt" tls
  assert_equal "$status" 1
  assert_output "lock 'tls': free"
  run "$GODISLOCK" release --force --cacert "$TLS_DIR/ca.crt" tls
  assert_equal "$status" 1
}

@test "--cacertdir trusts a hashed directory of CA certificates" {
  start_redis_tls
  mkdir "$BATS_TEST_TMPDIR/cas"
  cp "$TLS_DIR/ca.crt" "$BATS_TEST_TMPDIR/cas/"
  openssl rehash "$BATS_TEST_TMPDIR/cas"
  run "$GODISLOCK" run --cacertdir "$BATS_TEST_TMPDIR/cas" --name tls -- \
    echo ran
  assert_success
  assert_output ran
  # A directory without the CA: not trusted.
  run "$GODISLOCK" run --cacertdir "$BATS_TEST_TMPDIR" --name tls -- echo ran
  assert_equal "$status" 69
}

@test "--cacert of another CA: not trusted, 69; a missing file: 64, named" {
  start_redis_tls
  run --separate-stderr "$GODISLOCK" run --cacert "$TLS_DIR/other-ca.crt" \
    --name tls -- echo ran
  assert_handshake_refused "server certificate not trusted: .*"
  run --separate-stderr "$GODISLOCK" run --cacert "$TLS_DIR/nope.crt" \
    --name tls -- echo ran
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: cannot connect to \
rediss://localhost:$REDIS_TLS_PORT: TLS: cannot load CA file \
'$TLS_DIR/nope.crt': No such file or directory"
}

@test "--tls turns TLS on for a redis:// URL" {
  start_redis_tls
  run "$GODISLOCK" run --url "redis://localhost:$REDIS_TLS_PORT" --tls \
    --cacert "$TLS_DIR/ca.crt" --name tls -- echo ran
  assert_success
  assert_output ran
}

@test "a server that wants a client certificate: --cert/--key works, none or an untrusted one is 69" {
  start_redis_tls server yes
  run --separate-stderr "$GODISLOCK" run --cacert "$TLS_DIR/ca.crt" \
    --cert "$TLS_DIR/client.crt" --key "$TLS_DIR/client.key" --name tls -- \
    echo ran
  assert_success
  assert_output ran
  assert_equal "$stderr" ""
  run --separate-stderr "$GODISLOCK" run --cacert "$TLS_DIR/ca.crt" \
    --name tls -- echo ran
  assert_equal "$status" 69
  assert_output ""
  assert_equal "$stderr" "godislock: error: \
rediss://localhost:$REDIS_TLS_PORT: TLS: the server requires a client \
certificate"
  run --separate-stderr "$GODISLOCK" run --cacert "$TLS_DIR/ca.crt" \
    --cert "$TLS_DIR/self.crt" --key "$TLS_DIR/self.key" --name tls -- \
    echo ran
  assert_equal "$status" 69
  assert_output ""
  assert_equal "$stderr" "godislock: error: \
rediss://localhost:$REDIS_TLS_PORT: TLS: the server refused the client \
certificate (tlsv1 alert unknown ca)"
  assert_no_lock_key
}

@test "a private key readable by others: a warning like ssh's, the run goes on" {
  start_redis_tls server yes
  cp "$TLS_DIR/client.key" "$BATS_TEST_TMPDIR/open.key"
  chmod 0644 "$BATS_TEST_TMPDIR/open.key"
  run --separate-stderr "$GODISLOCK" run --cacert "$TLS_DIR/ca.crt" \
    --cert "$TLS_DIR/client.crt" --key "$BATS_TEST_TMPDIR/open.key" \
    --name tls -- echo ran
  assert_success
  assert_output ran
  assert_equal "$stderr" "godislock: warning: UNPROTECTED PRIVATE KEY FILE: \
permissions 0644 for '$BATS_TEST_TMPDIR/open.key' are too open; other users \
may read it (chmod 600 it)"
}

@test "--sni names the certificate to expect and is sent as the server name" {
  start_redis_tls evil
  run "$GODISLOCK" run --cacert "$TLS_DIR/ca.crt" --sni evil.example \
    --name tls -- echo ran
  assert_success
  assert_output ran
  # The server's certificate is for evil.example, not for another name.
  run --separate-stderr "$GODISLOCK" run --cacert "$TLS_DIR/ca.crt" \
    --sni other.example --name tls -- echo ran
  assert_equal "$status" 69
  assert_equal "$stderr" "godislock: error: cannot connect to \
rediss://localhost:$REDIS_TLS_PORT: TLS handshake failed: server certificate \
is not for 'other.example' (CN=evil.example)"
}

@test "--insecure accepts a self-signed certificate, with a warning on every run" {
  start_redis_tls self
  local i
  for i in 1 2; do
    run --separate-stderr "$GODISLOCK" run --insecure --name tls -- echo ran
    assert_success
    assert_output ran
    assert_equal "$stderr" "godislock: warning: --insecure: the server's \
certificate and name are not verified; anyone on the network path can pose \
as rediss://localhost:$REDIS_TLS_PORT"
  done
}

@test "a not yet valid server certificate: 69" {
  start_redis_tls future
  run --separate-stderr "$GODISLOCK" run --cacert "$TLS_DIR/ca.crt" \
    --name tls -- echo ran
  assert_handshake_refused "server certificate is not yet valid \(not valid \
before 2099-01-01 .*; CN=localhost\)"
}

@test "a TLS handshake nobody answers: 69 at --connect-timeout" {
  tls_certs
  # A listener that accepts and never speaks.
  local port
  port=$(free_port)
  python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
conns = []
while True:
    conns.append(s.accept()[0])
' "$port" &
  local listener=$!
  local i
  for i in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  run --separate-stderr "$GODISLOCK" run --url "rediss://127.0.0.1:$port" \
    --cacert "$TLS_DIR/ca.crt" --connect-timeout 500ms --name tls -- echo ran
  kill "$listener"
  wait "$listener" 2>/dev/null || true
  assert_equal "$status" 69
  assert_output ""
  assert_equal "$stderr" "godislock: error: cannot connect to \
rediss://127.0.0.1:$port: TLS handshake timed out (no answer: the server may \
not speak TLS)"
}

@test "TLS options are usage errors (64) without TLS, over a unix socket, or half given" {
  start_redis_tls
  local plain="redis://127.0.0.1:$REDIS_PORT" opt
  for opt in --cacert --cacertdir --cert --key --sni; do
    run --separate-stderr "$GODISLOCK" run --url "$plain" "$opt" x \
      --name tls -- echo ran
    assert_equal "$status" 64
    assert_equal "$stderr" "godislock: error: $opt is for TLS: use a \
rediss:// URL or add --tls"
  done
  run --separate-stderr "$GODISLOCK" run --url "$plain" --insecure \
    --name tls -- echo ran
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: --insecure is for TLS: use a \
rediss:// URL or add --tls"
  run --separate-stderr "$GODISLOCK" run --url "unix://$BATS_TEST_TMPDIR/r.sock" \
    --tls --name tls -- echo ran
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: TLS is not available over a unix \
socket (unix://$BATS_TEST_TMPDIR/r.sock)"
  run --separate-stderr "$GODISLOCK" run --cert "$TLS_DIR/client.crt" \
    --name tls -- echo ran
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: --cert needs --key (the \
certificate's private key)"
  run --separate-stderr "$GODISLOCK" run --key "$TLS_DIR/client.key" \
    --name tls -- echo ran
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: --key needs --cert (the \
certificate that goes with the key)"
  run --separate-stderr "$GODISLOCK" run --cacert "" --name tls -- echo ran
  assert_equal "$status" 64
  assert_equal "$stderr" "godislock: error: --cacert must not be empty"
}

@test "every TLS option has its environment variable" {
  start_redis_tls server yes
  GODISLOCK_URL="redis://localhost:$REDIS_TLS_PORT" GODISLOCK_TLS=1 \
    GODISLOCK_CACERT="$TLS_DIR/ca.crt" GODISLOCK_CERT="$TLS_DIR/client.crt" \
    GODISLOCK_KEY="$TLS_DIR/client.key" run "$GODISLOCK" run --name tls -- \
    echo ran
  assert_success
  assert_output ran
  mkdir "$BATS_TEST_TMPDIR/cas"
  cp "$TLS_DIR/ca.crt" "$BATS_TEST_TMPDIR/cas/"
  openssl rehash "$BATS_TEST_TMPDIR/cas"
  GODISLOCK_CACERTDIR="$BATS_TEST_TMPDIR/cas" \
    GODISLOCK_CERT="$TLS_DIR/client.crt" GODISLOCK_KEY="$TLS_DIR/client.key" \
    run "$GODISLOCK" run --name tls -- echo ran
  assert_success
  # GODISLOCK_SNI is checked: the server's certificate is not for it.
  GODISLOCK_SNI=other.example GODISLOCK_CACERT="$TLS_DIR/ca.crt" \
    run --separate-stderr "$GODISLOCK" run --name tls -- echo ran
  assert_equal "$status" 69
  assert_regex "$stderr" "is not for 'other.example'"
  GODISLOCK_INSECURE=yes GODISLOCK_CERT="$TLS_DIR/client.crt" \
    GODISLOCK_KEY="$TLS_DIR/client.key" run --separate-stderr "$GODISLOCK" \
    run --name tls -- echo ran
  assert_success
  assert_regex "$stderr" "^godislock: warning: --insecure: "
  # The command line wins over the environment.
  GODISLOCK_CACERT="$TLS_DIR/other-ca.crt" run "$GODISLOCK" run \
    --cacert "$TLS_DIR/ca.crt" --cert "$TLS_DIR/client.crt" \
    --key "$TLS_DIR/client.key" --name tls -- echo ran
  assert_success
}
