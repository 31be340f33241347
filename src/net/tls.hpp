// SPDX-License-Identifier: MIT
#pragma once

#include "net/stream.hpp"
#include "util/deadline.hpp"
#include "util/result.hpp"

#include <memory>
#include <string>

namespace godislock::net {

// --- Interface ---

// What a TLS client trusts and presents.
struct TlsClientConfig {
  std::string ca_file;    // PEM bundle; with ca_dir empty too: the system's
                          // store (which honours SSL_CERT_FILE/SSL_CERT_DIR)
  std::string ca_dir;     // a directory of hashed CA certificates
  std::string cert_file;  // client certificate chain (PEM), with key_file
  std::string key_file;   // its private key (PEM, not encrypted)
  bool verify = true;     // false: accept any certificate for any name
};

// The client side of TLS for one endpoint (an OpenSSL SSL_CTX): TLS 1.2 at
// least, the trust store and client certificate loaded once. Build it once
// and share it (std::shared_ptr) between the connections to the endpoint:
// sessions may be started from several threads at once, since nothing
// changes the context after create(). Immutable.
class TlsContext {
 public:
  // Errors: config (a CA file or directory, the certificate or the key
  // cannot be loaded, or the key does not match the certificate; the
  // message names the file and OpenSSL's reason).
  static util::Result<std::shared_ptr<const TlsContext>> create(
      const TlsClientConfig& config);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // A warning for the user, or "": the private key file is accessible to
  // group or others (loading it still worked).
  const std::string& warning() const { return m_warning; }
  bool has_client_certificate() const { return m_has_cert; }

 private:
  friend class TlsSession;
  struct Impl;
  TlsContext();
  std::unique_ptr<Impl> m_impl;
  std::string m_warning;
  bool m_has_cert = false;
};

// One TLS client session over a connected, non-blocking socket that the
// caller owns and keeps open while the session lives (net::Stream pairs
// them). Not thread-safe; move-only through its unique_ptr.
class TlsSession {
 public:
  // Runs the handshake on `fd` by `deadline`. `host` is the name or IP
  // literal connected to. The certificate must be for `sni` when it is
  // given, else for `host` (a name, or an IP literal in an iPAddress
  // entry); SNI carries `sni` or the name, never an IP literal.
  // Errors: timeout ("TLS handshake timed out"), io (one line naming the
  // cause: an untrusted, expired, not yet valid or foreign certificate, a
  // server that does not speak TLS, an alert from the server).
  static util::Result<std::unique_ptr<TlsSession>> connect(
      const TlsContext& context, int fd, const std::string& host,
      const std::string& sni, util::Deadline deadline);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // As Stream::read/write (SSL_read/SSL_write: one attempt each).
  util::Result<IoStep> read(char* buf, size_t len);
  util::Result<IoStep> write(const char* buf, size_t len);

 private:
  struct Impl;
  explicit TlsSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace godislock::net
