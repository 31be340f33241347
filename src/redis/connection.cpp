// SPDX-License-Identifier: MIT
#include "redis/connection.hpp"

#include "net/socket.hpp"

#include <fmt/format.h>

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace godislock::redis {

using util::Deadline;
using util::Error;
using util::ErrorKind;

namespace {

std::string errno_text(int err) { return std::strerror(err); }

util::Result<std::vector<net::Address>> addresses_of(const config::Endpoint& ep,
                                                     Deadline deadline) {
  if (ep.kind == config::Endpoint::Kind::unix_socket) {
    auto a = net::unix_address(ep.path);
    if (!a) {
      return a.error();
    }
    return std::vector<net::Address>{a.value()};
  }
  return net::resolve(ep.host, ep.port, deadline);
}

}  // namespace

util::Result<std::vector<net::Address>> resolve(const config::Endpoint& ep,
                                                Deadline deadline) {
  auto addresses = addresses_of(ep, deadline);
  if (!addresses) {
    return Error{addresses.error().kind,
                 fmt::format("cannot connect to {}: {}", ep.redacted(),
                             addresses.error().message)};
  }
  return addresses;
}

util::Result<Connection> Connection::open(const config::Endpoint& ep,
                                          Deadline deadline) {
  auto addresses = resolve(ep, deadline);
  if (!addresses) {
    return addresses.error();
  }
  return open(ep, addresses.value(), deadline);
}

util::Result<std::shared_ptr<const net::TlsContext>> tls_context(
    const config::Endpoint& ep) {
  if (auto problem = config::endpoint_problem(ep)) {
    return Error{ErrorKind::config, *problem};
  }
  if (!ep.tls.enabled) {
    return std::shared_ptr<const net::TlsContext>();
  }
  net::TlsClientConfig c;
  c.ca_file = ep.tls.ca_file;
  c.ca_dir = ep.tls.ca_dir;
  c.cert_file = ep.tls.cert_file;
  c.key_file = ep.tls.key_file;
  c.verify = !ep.tls.insecure;
  auto ctx = net::TlsContext::create(c);
  if (!ctx) {
    return Error{ctx.error().kind,
                 fmt::format("cannot connect to {}: {}", ep.redacted(),
                             ctx.error().message)};
  }
  return ctx;
}

util::Result<Connection> Connection::open(
    const config::Endpoint& ep, const std::vector<net::Address>& addresses,
    Deadline deadline) {
  auto tls = tls_context(ep);
  if (!tls) {
    return tls.error();
  }
  return open(ep, addresses, tls.value(), deadline);
}

util::Result<Connection> Connection::open(
    const config::Endpoint& ep, const std::vector<net::Address>& addresses,
    const std::shared_ptr<const net::TlsContext>& tls, Deadline deadline,
    Login login) {
  std::string peer = ep.redacted();
  if (auto problem = config::endpoint_problem(ep)) {
    return Error{ErrorKind::config, *problem};
  }
  if (ep.tls.enabled && tls == nullptr) {
    return Error{
        ErrorKind::config,
        fmt::format("{}: TLS is on but no TLS context was made", peer)};
  }
  auto fd = net::connect(addresses, deadline);
  if (!fd) {
    return Error{fd.error().kind, fmt::format("cannot connect to {}: {}", peer,
                                              fd.error().message)};
  }
  std::unique_ptr<net::TlsSession> session;
  if (ep.tls.enabled) {
    auto s = net::TlsSession::connect(*tls, fd->get(), ep.host, ep.tls.sni,
                                      deadline);
    if (!s) {
      return Error{s.error().kind, fmt::format("cannot connect to {}: {}", peer,
                                               s.error().message)};
    }
    session = std::move(s.value());
  }
  Connection conn(session
                      ? net::Stream(std::move(fd.value()), std::move(session))
                      : net::Stream(std::move(fd.value())),
                  peer);
  // A named user without a password still logs in: a `nopass` user takes
  // any password, and any other user is refused rather than the commands
  // running as the default user.
  if (!ep.password.empty() || !ep.user.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!ep.user.empty()) {
      auth.push_back(ep.user);
    }
    auth.push_back(ep.password);
    conn.m_login += encode_command(auth);
    conn.m_login_steps.push_back(LoginStep::auth);
  }
  if (ep.db != 0) {
    conn.m_login += encode_command({"SELECT", std::to_string(ep.db)});
    conn.m_login_steps.push_back(LoginStep::select);
  }
  conn.m_db = ep.db;
  if (login == Login::now) {
    GODISLOCK_TRY(conn.finish_login(deadline));
  }
  return conn;
}

util::Status Connection::finish_login(Deadline deadline) {
  if (m_login.empty()) {
    return util::ok_status();
  }
  std::string login = std::move(m_login);
  m_login.clear();
  GODISLOCK_TRY(send_raw(login, deadline));
  return read_login_replies(deadline);
}

// Reads the replies to AUTH and SELECT, in order; the first refusal is the
// error (the server's text names the problem, "WRONGPASS ...", and never
// echoes the password).
util::Status Connection::read_login_replies(Deadline deadline) {
  std::optional<Error> refused;
  for (LoginStep step : m_login_steps) {
    auto r = read_one(deadline, false);
    if (!r) {
      return refused ? *refused : r.error();
    }
    if (!r->is_error() || refused) {
      continue;
    }
    if (step == LoginStep::auth) {
      refused = Error{ErrorKind::auth, fmt::format("authentication to {} "
                                                   "failed: {}",
                                                   m_peer, r->str)};
    } else {
      // Refused for want of rights: 69; an index out of range: 64.
      bool rights =
          r->str.rfind("NOAUTH", 0) == 0 || r->str.rfind("NOPERM", 0) == 0;
      ErrorKind kind = rights ? ErrorKind::auth : ErrorKind::config;
      refused = Error{kind, fmt::format("cannot select database {} on {}: {}",
                                        m_db, m_peer, r->str)};
    }
  }
  m_login_steps.clear();
  if (refused) {
    return *refused;
  }
  return util::ok_status();
}

Error Connection::fail(ErrorKind kind, std::string message) {
  m_broken = true;
  return Error{kind, fmt::format("{}: {}", m_peer, message)};
}

util::Status Connection::wait_for(const net::IoStep& step, Deadline deadline,
                                  bool idle_ok) {
  return wait_for(
      step.state == net::IoStep::State::want_write ? POLLOUT : POLLIN, deadline,
      idle_ok);
}

// Before any reply, a failure on a plaintext connection may be a TLS-only
// server: it resets or closes the connection, or answers with a TLS record
// (0x15 alert, 0x16 handshake) rather than RESP. Any other bytes (an HTTP
// server's "H") are no sign of TLS.
//
// Over TLS 1.3 the server checks a client certificate after the client's
// side of the handshake is done: a server that refuses it (or that wants
// one) sends an alert and resets the connection, and the reset may discard
// the alert before it is read. A failure before the first reply then most
// likely means that.
std::string Connection::hint_tls(std::string message) const {
  if (m_replied) {
    return message;
  }
  if (m_stream.is_tls()) {
    if (message.find("certificate") == std::string::npos) {
      message +=
          "; the server ended the TLS connection before answering: it may "
          "have refused the client certificate (see --cert)";
    }
    return message;
  }
  bool tls_record = m_first_byte == 0x15 || m_first_byte == 0x16;
  if (m_first_byte < 0 || tls_record) {
    message += "; the server may require TLS (use rediss://)";
  }
  return message;
}

util::Status Connection::wait_for(short events, Deadline deadline,
                                  bool idle_ok) {
  for (;;) {
    pollfd p[2] = {{m_stream.fd(), events, 0}, {m_interrupt_fd, POLLIN, 0}};
    nfds_t count = m_interrupt_fd >= 0 ? 2 : 1;
    int n = ::poll(p, count, deadline.poll_timeout_ms());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail(ErrorKind::io, "poll: " + errno_text(errno));
    }
    if (count == 2 && (p[1].revents & POLLIN) != 0) {
      // Not a connection failure, but a reply still owed or half read
      // cannot be resumed later.
      if (!idle_ok) {
        m_broken = true;
      }
      return Error{ErrorKind::interrupted, "interrupted by a signal"};
    }
    if (n > 0) {
      return util::ok_status();
    }
    if (deadline.expired()) {
      if (idle_ok) {
        return Error{ErrorKind::timeout, "nothing arrived in time"};
      }
      return fail(ErrorKind::timeout, "no reply in time");
    }
  }
}

util::Status Connection::send(const std::vector<std::string>& argv,
                              Deadline deadline) {
  return send_encoded(encode_command(argv), deadline);
}

util::Status Connection::send_encoded(const std::string& buf,
                                      Deadline deadline) {
  if (!m_login.empty()) {
    // The login kept back by open() goes in the same write; read_reply
    // reads its replies first.
    std::string both = std::move(m_login) + buf;
    m_login.clear();
    m_login_in_flight = true;
    return send_raw(both, deadline);
  }
  return send_raw(buf, deadline);
}

util::Status Connection::send_raw(const std::string& buf, Deadline deadline) {
  if (m_broken) {
    return Error{ErrorKind::io, m_peer + ": connection is broken"};
  }
  size_t off = 0;
  while (off < buf.size()) {
    // After a want_* step `off` is unchanged: the retry passes the same
    // bytes and length, as TLS requires.
    auto step = m_stream.write(buf.data() + off, buf.size() - off);
    if (!step) {
      return fail(step.error().kind, hint_tls(step.error().message));
    }
    if (step->state == net::IoStep::State::done) {
      off += step->bytes;
      continue;
    }
    GODISLOCK_TRY(wait_for(*step, deadline));
  }
  return util::ok_status();
}

util::Result<Reply> Connection::read_reply(Deadline deadline, bool idle_ok) {
  if (!m_login_in_flight) {
    return read_one(deadline, idle_ok);
  }
  m_login_in_flight = false;
  auto login = read_login_replies(deadline);
  auto r = read_one(deadline, false);
  if (!login) {
    // The command was read by a server that refused the login: it ran as
    // the default user, or in database 0, if the server let it.
    m_ran_despite_failed_login = r && !r->is_error();
    return login.error();
  }
  return r;
}

util::Result<Reply> Connection::read_one(Deadline deadline, bool idle_ok) {
  if (m_broken) {
    return Error{ErrorKind::io, m_peer + ": connection is broken"};
  }
  for (;;) {
    auto r = m_reader.next();
    if (!r) {
      return fail(ErrorKind::protocol, hint_tls(r.error().message));
    }
    if (r->has_value()) {
      m_partial = false;
      m_replied = true;
      return std::move(**r);
    }
    // Polls only once a read says want_read: over TLS, decrypted bytes of
    // the next reply may already wait inside the session, where poll(2)
    // does not see them.
    char buf[16384];
    auto step = m_stream.read(buf, sizeof buf);
    if (!step) {
      return fail(step.error().kind, hint_tls(step.error().message));
    }
    if (step->state == net::IoStep::State::done) {
      if (m_first_byte < 0 && step->bytes > 0) {
        m_first_byte = static_cast<unsigned char>(buf[0]);
      }
      m_partial = true;
      auto fed = m_reader.feed(buf, step->bytes);
      if (!fed) {
        return fail(ErrorKind::protocol, hint_tls(fed.error().message));
      }
      continue;
    }
    if (step->state == net::IoStep::State::closed) {
      return fail(ErrorKind::io, hint_tls("connection closed by server"));
    }
    GODISLOCK_TRY(wait_for(*step, deadline, idle_ok && !m_partial));
  }
}

util::Result<Reply> Connection::command(const std::vector<std::string>& argv,
                                        Deadline deadline) {
  GODISLOCK_TRY(send(argv, deadline));
  return read_reply(deadline);
}

}  // namespace godislock::redis
