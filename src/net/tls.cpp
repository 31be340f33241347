// SPDX-License-Identifier: MIT
// The only file that sees OpenSSL. References: the OpenSSL 3.0 manual pages
// SSL_get_error(3), SSL_read(3), SSL_write(3), SSL_CTX_set_mode(3),
// SSL_set1_host(3), X509_VERIFY_PARAM_set1_ip_asc(3), BIO_meth_new(3).
#include "net/tls.hpp"

#include "net/resolve.hpp"

#include <fmt/format.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>

namespace godislock::net {

using util::Deadline;
using util::Error;
using util::ErrorKind;

namespace {

// What OpenSSL's callbacks saw during one session's handshake; reached
// through the SSL object's app data.
struct Observed {
  // The server sent a CertificateRequest and we had no certificate.
  bool asked_for_certificate = false;
  // The first verification failure and the certificate it concerns.
  int verify_error = X509_V_OK;
  std::string subject;
  std::string not_before;
  std::string not_after;
};

// The reason text of the oldest error in this thread's OpenSSL queue (the
// most specific one), or "" when it is empty. Empties the queue.
std::string take_error_text(unsigned long* first_out = nullptr) {
  unsigned long first = ERR_get_error();
  if (first_out != nullptr) {
    *first_out = first;
  }
  while (ERR_get_error() != 0) {
  }
  if (first == 0) {
    return "";
  }
  if (ERR_SYSTEM_ERROR(first)) {
    return std::strerror(ERR_GET_REASON(first));
  }
  if (const char* reason = ERR_reason_error_string(first)) {
    return reason;
  }
  char buf[256];
  ERR_error_string_n(first, buf, sizeof buf);
  return buf;
}

std::string name_text(const X509_NAME* name) {
  BIO* mem = BIO_new(BIO_s_mem());
  if (mem == nullptr) {
    return "?";
  }
  X509_NAME_print_ex(mem, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long len = BIO_get_mem_data(mem, &data);
  std::string out(data, static_cast<size_t>(len > 0 ? len : 0));
  BIO_free(mem);
  return out;
}

std::string time_text(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return "?";
  }
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

// Records the first failure; the handshake's error message is built from
// it. Does not change the verdict.
int verify_callback(int ok, X509_STORE_CTX* store) {
  if (ok != 0) {
    return ok;
  }
  auto* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* seen =
      ssl != nullptr ? static_cast<Observed*>(SSL_get_app_data(ssl)) : nullptr;
  if (seen == nullptr || seen->verify_error != X509_V_OK) {
    return ok;
  }
  seen->verify_error = X509_STORE_CTX_get_error(store);
  if (X509* cert = X509_STORE_CTX_get_current_cert(store)) {
    seen->subject = name_text(X509_get_subject_name(cert));
    seen->not_before = time_text(X509_get0_notBefore(cert));
    seen->not_after = time_text(X509_get0_notAfter(cert));
  }
  return ok;
}

// Called only when the server asks for a certificate and none is loaded:
// remember it, to explain the server's refusal that follows.
int client_cert_callback(SSL* ssl, X509** /*cert*/, EVP_PKEY** /*key*/) {
  if (auto* seen = static_cast<Observed*>(SSL_get_app_data(ssl))) {
    seen->asked_for_certificate = true;
  }
  return 0;
}

// An encrypted key would make OpenSSL prompt on the terminal; refuse
// instead, and remember that a passphrase was wanted.
int refuse_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/,
                      void* asked) {
  *static_cast<bool*>(asked) = true;
  return 0;
}

// A socket BIO that sends with MSG_NOSIGNAL: OpenSSL's own uses write(2),
// which raises SIGPIPE when the server has closed, and a process that does
// not ignore SIGPIPE would die of it. Everything but read and write comes
// from BIO_s_socket(), so BIO_set_fd and SSL_get_fd work as usual.
int bio_write(BIO* bio, const char* data, int len) {
  BIO_clear_retry_flags(bio);
  int fd = static_cast<int>(BIO_get_fd(bio, nullptr));
  ssize_t n;
  do {
    n = ::send(fd, data, static_cast<size_t>(len), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    BIO_set_retry_write(bio);
  }
  return static_cast<int>(n);
}

int bio_read(BIO* bio, char* data, int len) {
  if (data == nullptr) {
    return 0;
  }
  BIO_clear_retry_flags(bio);
  int fd = static_cast<int>(BIO_get_fd(bio, nullptr));
  ssize_t n;
  do {
    n = ::recv(fd, data, static_cast<size_t>(len), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    BIO_set_retry_read(bio);
  }
#ifdef BIO_FLAGS_IN_EOF
  if (n == 0) {
    BIO_set_flags(bio, BIO_FLAGS_IN_EOF);
  }
#endif
  return static_cast<int>(n);
}

// Made once, on first use (thread-safe static initialisation), and kept
// for the life of the process like OpenSSL's built-in methods.
BIO_METHOD* socket_method() {
  static BIO_METHOD* method = [] {
    const BIO_METHOD* base = BIO_s_socket();
    BIO_METHOD* m = BIO_meth_new(
        BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
        "godislock socket");
    if (m == nullptr) {
      return m;
    }
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_puts(m, BIO_meth_get_puts(base));
    BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(base));
    BIO_meth_set_create(m, BIO_meth_get_create(base));
    BIO_meth_set_destroy(m, BIO_meth_get_destroy(base));
    return m;
  }();
  return method;
}

bool is_ssl_reason(unsigned long e, int reason) {
  return e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == reason;
}

// The server refused us for want of a client certificate: TLS 1.3's
// certificate_required alert, or (TLS 1.2, or a server that just hangs up)
// any failure after it asked for one we did not have.
bool refused_for_certificate(unsigned long e, const Observed& seen) {
  return is_ssl_reason(e, SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED) ||
         (seen.asked_for_certificate &&
          (is_ssl_reason(e, SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE) ||
           is_ssl_reason(e, SSL_R_SSLV3_ALERT_BAD_CERTIFICATE) ||
           is_ssl_reason(e, SSL_R_UNEXPECTED_EOF_WHILE_READING) || e == 0));
}

// A fatal alert the server sent about our certificate (TLS 1.3 checks it
// after the client's side of the handshake, so it arrives on the first
// read or write): retrying with the same certificate cannot help.
bool alert_about_our_certificate(unsigned long e) {
  for (int reason :
       {SSL_R_TLSV1_ALERT_UNKNOWN_CA, SSL_R_SSLV3_ALERT_BAD_CERTIFICATE,
        SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN,
        SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED,
        SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED,
        SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE,
        SSL_R_TLSV1_ALERT_ACCESS_DENIED, SSL_R_TLSV1_ALERT_DECRYPT_ERROR}) {
    if (is_ssl_reason(e, reason)) {
      return true;
    }
  }
  return false;
}

constexpr const char* k_needs_certificate =
    "the server requires a client certificate";

std::string verify_failure(const Observed& seen, long result,
                           const std::string& expected) {
  int err = seen.verify_error != X509_V_OK ? seen.verify_error
                                           : static_cast<int>(result);
  std::string subject =
      seen.subject.empty() ? "" : fmt::format(" ({})", seen.subject);
  switch (err) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return fmt::format("server certificate is not for '{}'{}", expected,
                         subject);
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return fmt::format(
          "server certificate has expired (not valid after {}{})",
          seen.not_after, seen.subject.empty() ? "" : "; " + seen.subject);
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return fmt::format(
          "server certificate is not yet valid (not valid before {}{})",
          seen.not_before, seen.subject.empty() ? "" : "; " + seen.subject);
    default:
      return fmt::format("server certificate not trusted: {}{}",
                         X509_verify_cert_error_string(err), subject);
  }
}

}  // namespace

// --- TlsContext ---

struct TlsContext::Impl {
  SSL_CTX* ctx = nullptr;
  bool verify = true;
  ~Impl() { SSL_CTX_free(ctx); }
};

TlsContext::TlsContext() : m_impl(std::make_unique<Impl>()) {}
TlsContext::~TlsContext() = default;

namespace {

Error config_error(std::string what) {
  return Error{ErrorKind::config, std::move(what)};
}

// The CAs to verify the server against: a file and/or a directory, else the
// system's (OpenSSL's default paths, which honour SSL_CERT_FILE/_DIR).
util::Status load_trust(SSL_CTX* ctx, const TlsClientConfig& config) {
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_callback);
  if (!config.ca_dir.empty()) {
    struct stat st {};
    if (::stat(config.ca_dir.c_str(), &st) != 0) {
      return config_error(fmt::format("TLS: CA directory '{}': {}",
                                      config.ca_dir, std::strerror(errno)));
    }
    if (!S_ISDIR(st.st_mode)) {
      return config_error(fmt::format("TLS: CA directory '{}': {}",
                                      config.ca_dir, std::strerror(ENOTDIR)));
    }
  }
  if (!config.ca_file.empty() || !config.ca_dir.empty()) {
    if (SSL_CTX_load_verify_locations(
            ctx, config.ca_file.empty() ? nullptr : config.ca_file.c_str(),
            config.ca_dir.empty() ? nullptr : config.ca_dir.c_str()) != 1) {
      return config_error(fmt::format("TLS: cannot load CA file '{}': {}",
                                      config.ca_file, take_error_text()));
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return config_error("TLS: cannot load the system's CA certificates: " +
                        take_error_text());
  }
  return util::ok_status();
}

// The client certificate and its key (from the certificate file when no
// key file is given); an encrypted key is refused, never prompted for.
util::Status load_client_certificate(SSL_CTX* ctx,
                                     const TlsClientConfig& config,
                                     const std::string& key) {
  bool asked = false;
  SSL_CTX_set_default_passwd_cb(ctx, refuse_passphrase);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, &asked);
  if (SSL_CTX_use_certificate_chain_file(ctx, config.cert_file.c_str()) != 1) {
    return config_error(
        fmt::format("TLS: cannot load client certificate '{}': {}",
                    config.cert_file, take_error_text()));
  }
  int loaded = SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);
  std::string mismatch = fmt::format(
      "TLS: private key '{}' does not match client certificate '{}'", key,
      config.cert_file);
  if (loaded != 1) {
    unsigned long first = 0;
    std::string why = take_error_text(&first);
    if (ERR_GET_LIB(first) == ERR_LIB_X509 &&
        ERR_GET_REASON(first) == X509_R_KEY_VALUES_MISMATCH) {
      return config_error(mismatch);
    }
    if (asked) {
      why = "it is encrypted (a passphrase is not supported)";
    }
    return config_error(
        fmt::format("TLS: cannot load private key '{}': {}", key, why));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return config_error(mismatch);
  }
  return util::ok_status();
}

}  // namespace

util::Result<std::shared_ptr<const TlsContext>> TlsContext::create(
    const TlsClientConfig& config) {
  ERR_clear_error();
  std::shared_ptr<TlsContext> out(new TlsContext());
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    return config_error("TLS: cannot set up: " + take_error_text());
  }
  out->m_impl->ctx = ctx;
  out->m_impl->verify = config.verify;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // A write that WANTs to be retried is retried from Connection's buffer,
  // which may move (a std::string) between attempts; same bytes, same
  // length.
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_client_cert_cb(ctx, client_cert_callback);
  if (config.verify) {
    GODISLOCK_TRY(load_trust(ctx, config));
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (config.cert_file.empty() && !config.key_file.empty()) {
    return config_error(
        fmt::format("TLS: private key '{}' given without a client certificate",
                    config.key_file));
  }
  if (config.cert_file.empty()) {
    return std::shared_ptr<const TlsContext>(std::move(out));
  }
  const std::string& key =
      config.key_file.empty() ? config.cert_file : config.key_file;
  GODISLOCK_TRY(load_client_certificate(ctx, config, key));
  out->m_has_cert = true;
  // As ssh(1) does for identity files: warn, do not refuse.
  struct stat st {};
  if (::stat(key.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    out->m_warning = fmt::format(
        "UNPROTECTED PRIVATE KEY FILE: permissions {:04o} for '{}' are too "
        "open; other users may read it (chmod 600 it)",
        st.st_mode & 07777, key);
  }
  return std::shared_ptr<const TlsContext>(std::move(out));
}

// --- TlsSession ---

struct TlsSession::Impl {
  SSL* ssl = nullptr;
  Observed seen;
  bool healthy = false;  // handshake done and no fatal error since
  bool got_data = false;
  ~Impl() {
    if (ssl == nullptr) {
      return;
    }
    if (healthy) {
      // One non-blocking attempt at close_notify; a server that has gone
      // needs none.
      ERR_clear_error();
      SSL_shutdown(ssl);
      ERR_clear_error();
    }
    SSL_free(ssl);
  }

  // A failed SSL_read/SSL_write: `ret` and SSL_get_error's `code`.
  util::Result<IoStep> step_after(int code, const char* op) {
    switch (code) {
      case SSL_ERROR_WANT_READ:
        return IoStep{IoStep::State::want_read, 0};
      case SSL_ERROR_WANT_WRITE:
        return IoStep{IoStep::State::want_write, 0};
      default:
        break;
    }
    healthy = false;
    int saved_errno = errno;
    unsigned long first = 0;
    std::string text = take_error_text(&first);
    // A server that refuses us closes the connection: a write after that
    // may fail with EPIPE or ECONNRESET before its alert is read.
    bool hung_up = code == SSL_ERROR_ZERO_RETURN ||
                   (code == SSL_ERROR_SYSCALL &&
                    (saved_errno == 0 || saved_errno == EPIPE ||
                     saved_errno == ECONNRESET));
    if (!got_data && refused_for_certificate(first, seen) &&
        (first != 0 || hung_up)) {
      return Error{ErrorKind::auth,
                   fmt::format("TLS: {}", k_needs_certificate)};
    }
    if (!got_data && alert_about_our_certificate(first)) {
      return Error{ErrorKind::auth,
                   fmt::format("TLS: the server refused the client "
                               "certificate ({})",
                               text)};
    }
    if (code == SSL_ERROR_ZERO_RETURN ||
        (code == SSL_ERROR_SYSCALL && first == 0 && saved_errno == 0) ||
        is_ssl_reason(first, SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
      return IoStep{IoStep::State::closed, 0};
    }
    if (code == SSL_ERROR_SYSCALL && first == 0) {
      return Error{ErrorKind::io,
                   fmt::format("{}: {}", op, std::strerror(saved_errno))};
    }
    return Error{
        ErrorKind::io,
        fmt::format("TLS: {}", text.empty() ? "protocol error" : text)};
  }
};

TlsSession::TlsSession(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
TlsSession::~TlsSession() = default;

namespace {

// Sends SNI for a name (RFC 6066 section 3: never for an IP literal) and,
// when verifying, has the certificate checked against the name or address.
util::Status name_the_server(SSL* ssl, const std::string& expected,
                             bool verify) {
  bool is_ip = parse_ip_literal(expected, 0).has_value();
  if (!is_ip && SSL_set_tlsext_host_name(ssl, expected.c_str()) != 1) {
    return Error{ErrorKind::io,
                 fmt::format("TLS: invalid server name '{}'", expected)};
  }
  if (!verify) {
    return util::ok_status();
  }
  int set = 0;
  if (is_ip) {
    set = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), expected.c_str());
  } else {
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    set = SSL_set1_host(ssl, expected.c_str());
  }
  if (set != 1) {
    return Error{ErrorKind::io,
                 fmt::format("TLS: cannot check the certificate against '{}'",
                             expected)};
  }
  return util::ok_status();
}

// Why a handshake failed, in words: the certificate's verification, a
// client certificate the server wanted, a peer that does not speak TLS, or
// what OpenSSL or the system said. `code` is SSL_get_error's, `saved_errno`
// the errno right after SSL_connect.
std::string handshake_failure(SSL* ssl, const Observed& seen, int code,
                              int saved_errno, const std::string& expected) {
  unsigned long first = 0;
  std::string text = take_error_text(&first);
  long verified = SSL_get_verify_result(ssl);
  if (seen.verify_error != X509_V_OK || verified != X509_V_OK) {
    return verify_failure(seen, verified, expected);
  }
  if (refused_for_certificate(first, seen) &&
      (first != 0 || saved_errno == 0)) {
    return k_needs_certificate;
  }
  if (is_ssl_reason(first, SSL_R_WRONG_VERSION_NUMBER) ||
      is_ssl_reason(first, SSL_R_PACKET_LENGTH_TOO_LONG) ||
      is_ssl_reason(first, SSL_R_RECORD_LENGTH_MISMATCH)) {
    return fmt::format("the server does not speak TLS ({})", text);
  }
  if (is_ssl_reason(first, SSL_R_UNEXPECTED_EOF_WHILE_READING) ||
      (code == SSL_ERROR_SYSCALL && first == 0 && saved_errno == 0)) {
    return "the server does not speak TLS (it closed the connection during "
           "the handshake)";
  }
  if (code == SSL_ERROR_SYSCALL && first == 0) {
    return std::strerror(saved_errno);
  }
  return text.empty() ? "protocol error" : text;
}

}  // namespace

util::Result<std::unique_ptr<TlsSession>> TlsSession::connect(
    const TlsContext& context, int fd, const std::string& host,
    const std::string& sni, Deadline deadline) {
  ERR_clear_error();
  auto impl = std::make_unique<Impl>();
  impl->ssl = SSL_new(context.m_impl->ctx);
  BIO_METHOD* method = socket_method();
  BIO* bio =
      impl->ssl != nullptr && method != nullptr ? BIO_new(method) : nullptr;
  if (bio == nullptr) {
    return Error{ErrorKind::io, "TLS: cannot set up: " + take_error_text()};
  }
  BIO_set_fd(bio, fd, BIO_NOCLOSE);
  SSL_set_bio(impl->ssl, bio, bio);  // the SSL owns the one reference
  SSL_set_app_data(impl->ssl, &impl->seen);

  const std::string& expected = sni.empty() ? host : sni;
  GODISLOCK_TRY(name_the_server(impl->ssl, expected, context.m_impl->verify));

  for (;;) {
    ERR_clear_error();
    int ret = SSL_connect(impl->ssl);
    if (ret == 1) {
      break;
    }
    int code = SSL_get_error(impl->ssl, ret);
    short events = 0;
    if (code == SSL_ERROR_WANT_READ) {
      events = POLLIN;
    } else if (code == SSL_ERROR_WANT_WRITE) {
      events = POLLOUT;
    } else {
      return Error{ErrorKind::io, "TLS handshake failed: " +
                                      handshake_failure(impl->ssl, impl->seen,
                                                        code, errno, expected)};
    }
    for (;;) {
      pollfd p{fd, events, 0};
      int n = ::poll(&p, 1, deadline.poll_timeout_ms());
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        return Error{ErrorKind::io,
                     std::string("poll: ") + std::strerror(errno)};
      }
      if (n > 0) {
        break;
      }
      if (deadline.expired()) {
        // A plaintext Redis reads a ClientHello as an inline command and
        // may wait for its end of line for ever.
        if (BIO_number_read(SSL_get_rbio(impl->ssl)) == 0) {
          return Error{ErrorKind::timeout,
                       "TLS handshake timed out (no answer: the server may "
                       "not speak TLS)"};
        }
        return Error{ErrorKind::timeout, "TLS handshake timed out"};
      }
    }
  }
  impl->healthy = true;
  return std::unique_ptr<TlsSession>(new TlsSession(std::move(impl)));
}

util::Result<IoStep> TlsSession::read(char* buf, size_t len) {
  ERR_clear_error();
  int n = SSL_read(m_impl->ssl, buf,
                   static_cast<int>(std::min<size_t>(len, INT_MAX)));
  if (n > 0) {
    m_impl->got_data = true;
    return IoStep{IoStep::State::done, static_cast<size_t>(n)};
  }
  return m_impl->step_after(SSL_get_error(m_impl->ssl, n), "recv");
}

util::Result<IoStep> TlsSession::write(const char* buf, size_t len) {
  ERR_clear_error();
  // The same clamp on every retry: a retried SSL_write must ask for the
  // same length.
  int n = SSL_write(m_impl->ssl, buf,
                    static_cast<int>(std::min<size_t>(len, INT_MAX)));
  if (n > 0) {
    return IoStep{IoStep::State::done, static_cast<size_t>(n)};
  }
  int code = SSL_get_error(m_impl->ssl, n);
  auto step = m_impl->step_after(code, "send");
  if (step && step->state == IoStep::State::closed) {
    return Error{ErrorKind::io, "TLS: connection closed by server"};
  }
  return step;
}

}  // namespace godislock::net
