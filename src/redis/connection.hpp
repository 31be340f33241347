// SPDX-License-Identifier: MIT
#pragma once

#include "config/url.hpp"
#include "net/resolve.hpp"
#include "redis/resp.hpp"
#include "util/deadline.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

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

// One connection to a Redis server over a non-blocking, close-on-exec socket.
// Every call takes a deadline and never blocks past it. After any I/O or
// protocol error the connection is broken and must be replaced. Not
// thread-safe; move-only.
class Connection {
 public:
  // Connects to the first of `addresses` (from resolve(ep)) that accepts,
  // then sends AUTH and SELECT as the endpoint asks.
  // Errors: io/timeout (unreachable), auth (AUTH refused), protocol (the peer
  // does not speak RESP), server (SELECT refused).
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
  util::Status send_encoded(const std::string& bytes,
                            util::Deadline deadline);
  // Reads one reply. With `idle_ok` (for subscriptions, where nothing is
  // owed), reaching the deadline or an interruption before any byte of a
  // reply arrived leaves the connection usable.
  util::Result<Reply> read_reply(util::Deadline deadline,
                                 bool idle_ok = false);

  bool is_broken() const { return m_broken; }

 private:
  Connection(util::Fd fd, std::string peer)
      : m_fd(std::move(fd)), m_peer(std::move(peer)) {}
  util::Status wait_for(short events, util::Deadline deadline,
                        bool idle_ok = false);
  util::Error fail(util::ErrorKind kind, std::string message);

  util::Fd m_fd;
  std::string m_peer;  // redacted, for messages
  ReplyReader m_reader;
  int m_interrupt_fd = -1;
  bool m_broken = false;
  bool m_partial = false;  // bytes of an unfinished reply are buffered
};

}  // namespace godislock::redis
