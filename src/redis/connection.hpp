// SPDX-License-Identifier: MIT
#pragma once

#include "config/url.hpp"
#include "net/resolve.hpp"
#include "net/stream.hpp"
#include "net/tls.hpp"
#include "redis/resp.hpp"
#include "util/deadline.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

#include <memory>
#include <string>
#include <vector>

namespace godislock::redis {

// The addresses to connect to for `ep`: its host resolved (net::resolve,
// bounded by `deadline`; an IP literal without a lookup), or its unix
// socket. Resolve once and pass them to every Connection::open for the
// endpoint, so that a reconnect never waits for a name server.
// Errors: timeout (the lookup did not finish in time), io (no such name, or
// a socket path too long); the message names the endpoint.
util::Result<std::vector<net::Address>> resolve(const config::Endpoint& ep,
                                                util::Deadline deadline);

// The TLS context for `ep` (its trust store and client certificate
// loaded), or null when `ep` does not use TLS. Make it once per endpoint
// and pass it to every Connection::open, which may run on several threads.
// Its warning() (a private key readable by others) is for the caller to
// print.
// Errors: config (TLS over a unix socket; a CA, certificate or key file
// that cannot be loaded); the message names the endpoint.
util::Result<std::shared_ptr<const net::TlsContext>> tls_context(
    const config::Endpoint& ep);

// One connection to a Redis server over a non-blocking, close-on-exec socket,
// in plaintext or TLS (net::Stream). Every call takes a deadline and never
// blocks past it. After any I/O or protocol error the connection is broken
// and must be replaced. Not thread-safe; move-only.
class Connection {
 public:
  // When open() logs in (AUTH, SELECT).
  enum class Login {
    now,    // before open() returns
    later,  // in the same write as the first command (send or
            // send_encoded), saving a round trip each; read_reply reads
            // and checks their replies, in order, before that command's
  };

  // Connects to the first of `addresses` (from resolve(ep)) that accepts,
  // runs the TLS handshake when `ep` uses TLS (with `tls`, from
  // tls_context(ep)), then sends AUTH and SELECT as the endpoint asks.
  // Errors: io/timeout (unreachable; TLS handshake failed or timed out),
  // auth (AUTH refused), protocol (the peer does not speak RESP), config
  // (SELECT refused; TLS settings unusable).
  // With Login::later, a refused login is the error of the first
  // read_reply (see ran_despite_failed_login).
  static util::Result<Connection> open(
      const config::Endpoint& ep, const std::vector<net::Address>& addresses,
      const std::shared_ptr<const net::TlsContext>& tls,
      util::Deadline deadline, Login login = Login::now);
  // As above, with a TLS context of its own when `ep` uses TLS.
  static util::Result<Connection> open(
      const config::Endpoint& ep, const std::vector<net::Address>& addresses,
      util::Deadline deadline);
  // resolve(ep), then the above: for a single connection.
  static util::Result<Connection> open(const config::Endpoint& ep,
                                       util::Deadline deadline);

  // While `fd` is readable, blocking calls fail with ErrorKind::interrupted
  // (used with the signalfd so that signals cut waits short). -1: none.
  void set_interrupt_fd(int fd) { m_interrupt_fd = fd; }

  // Sends a command and reads its reply. A server error is a reply of type
  // error, not a failed Result.
  util::Result<Reply> command(const std::vector<std::string>& argv,
                              util::Deadline deadline);
  util::Status send(const std::vector<std::string>& argv,
                    util::Deadline deadline);
  // Sends commands already encoded (encode_command); several of them
  // concatenated go out in one write, so the server reads them together.
  // Read their replies in order with read_reply.
  util::Status send_encoded(const std::string& bytes, util::Deadline deadline);
  // Reads one reply. With `idle_ok` (for subscriptions, where nothing is
  // owed), reaching the deadline or an interruption before any byte of a
  // reply arrived leaves the connection usable.
  util::Result<Reply> read_reply(util::Deadline deadline, bool idle_ok = false);

  bool is_broken() const { return m_broken; }
  // The socket, for a caller that polls several connections (read_reply
  // with an expired deadline first: over TLS, bytes may wait inside the
  // session where poll(2) does not see them).
  int fd() const { return m_stream.fd(); }

  // Sends the login that open() kept back (Login::later) on its own and
  // checks its replies; a no-op when there is none. For a first command
  // that must not run unless the login succeeded.
  util::Status finish_login(util::Deadline deadline);
  // True when the login sent with the first command was refused but that
  // command still got an answer other than an error: the server ran it as
  // the default user (one without a password), or in database 0. The
  // caller undoes what it did; the connection stays usable for that.
  bool ran_despite_failed_login() const { return m_ran_despite_failed_login; }

 private:
  Connection(net::Stream stream, std::string peer)
      : m_stream(std::move(stream)), m_peer(std::move(peer)) {}
  util::Status wait_for(short events, util::Deadline deadline,
                        bool idle_ok = false);
  // Waits in the direction `step` asks for.
  util::Status wait_for(const net::IoStep& step, util::Deadline deadline,
                        bool idle_ok = false);
  util::Error fail(util::ErrorKind kind, std::string message);
  util::Status send_raw(const std::string& bytes, util::Deadline deadline);
  util::Result<Reply> read_one(util::Deadline deadline, bool idle_ok);
  util::Status read_login_replies(util::Deadline deadline);
  // `message` with a hint when a connection fails before its first reply:
  // in plaintext, as one to a TLS-only port does; over TLS, as one whose
  // client certificate the server refused does.
  std::string hint_tls(std::string message) const;

  net::Stream m_stream;
  std::string m_peer;  // redacted, for messages
  ReplyReader m_reader;
  int m_interrupt_fd = -1;
  bool m_broken = false;
  bool m_partial = false;  // bytes of an unfinished reply are buffered
  bool m_replied = false;  // a whole reply arrived: the peer speaks RESP
  int m_first_byte = -1;   // the first byte the peer sent (-1: none yet)
  // The login kept back (Login::later): AUTH and SELECT encoded, and which
  // replies to expect; in flight once sent with a command.
  enum class LoginStep { auth, select };
  std::string m_login;
  std::vector<LoginStep> m_login_steps;
  long m_db = 0;
  bool m_login_in_flight = false;
  bool m_ran_despite_failed_login = false;
};

}  // namespace godislock::redis
