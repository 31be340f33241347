// SPDX-License-Identifier: MIT
#pragma once

#include "util/fd.hpp"
#include "util/result.hpp"

#include <cstddef>
#include <memory>

namespace godislock::net {

class TlsSession;

// --- Interface ---

// What one non-blocking read or write attempt did.
struct IoStep {
  enum class State {
    done,        // `bytes` (more than 0) moved
    want_read,   // nothing moved: poll for POLLIN, then call again
    want_write,  // nothing moved: poll for POLLOUT, then call again
    closed,      // reads only: the peer closed the stream
  };
  State state = State::done;
  size_t bytes = 0;
};

// A connected byte stream over a non-blocking, close-on-exec socket: the
// socket itself, or a TLS session on it (TlsSession::connect). Owns both.
// The caller polls fd() in the direction a step asks for. Over TLS a
// step may ask for the other direction than the call's (a read may have
// to send, a write may have to receive), and decrypted bytes may wait
// inside the session where poll(2) cannot see them: so read until a step
// says want_read before polling. Not thread-safe; move-only.
class Stream {
 public:
  // A plaintext stream: read/write are recv(2)/send(2) and nothing else.
  explicit Stream(util::Fd fd);
  // TLS over `fd`; `tls` has finished its handshake on it.
  Stream(util::Fd fd, std::unique_ptr<TlsSession> tls);
  Stream(Stream&&) noexcept;
  Stream& operator=(Stream&&) noexcept;
  // Over TLS, sends a close_notify first when the session is healthy
  // (one non-blocking attempt, never waits).
  ~Stream();

  int fd() const { return m_fd.get(); }
  bool is_tls() const { return m_tls != nullptr; }

  // One attempt to read up to `len` bytes; retries after EINTR itself.
  // Errors: io (the message names the cause: "recv: Connection reset by
  // peer", a TLS alert from the server, ...).
  util::Result<IoStep> read(char* buf, size_t len);
  // One attempt to write up to `len` bytes (never raising SIGPIPE). After
  // want_read or want_write, call again with the same bytes and length:
  // TLS requires it.
  // Errors: io, as read.
  util::Result<IoStep> write(const char* buf, size_t len);

 private:
  // Declared first, destroyed last: the TLS session uses the fd to the end.
  util::Fd m_fd;
  std::unique_ptr<TlsSession> m_tls;
};

}  // namespace godislock::net
