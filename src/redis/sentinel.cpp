// SPDX-License-Identifier: MIT
#include "redis/sentinel.hpp"

#include "util/log.hpp"
#include "util/number.hpp"

#include <fmt/format.h>

#include <poll.h>

#include <algorithm>
#include <string_view>
#include <utility>

namespace godislock::redis {

using util::Deadline;
using util::Error;
using util::ErrorKind;
using util::Result;

namespace {

// Between rounds of asking the sentinels (the replica named is not
// promoted yet, the master named does not answer): short, as a failover
// completes within a second or two of being decided.
constexpr util::Millis k_retry_pause{100};

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    out += (out.empty() ? "" : "; ") + p;
  }
  return out;
}

// "ip:port", or "[v6]:port".
std::string host_port(const std::string& host, std::string_view port) {
  return host.find(':') != std::string::npos
             ? fmt::format("[{}]:{}", host, port)
             : fmt::format("{}:{}", host, port);
}

std::string host_port(const std::string& host, uint16_t port) {
  return host_port(host, std::to_string(port));
}

// Sleeps for `pause` (not past `deadline`); false when `interrupt_fd`
// became readable first.
bool pause_unless_interrupted(util::Millis pause, int interrupt_fd,
                              Deadline deadline) {
  Deadline until = Deadline::after(pause).min(deadline);
  pollfd p{interrupt_fd, POLLIN, 0};
  for (;;) {
    int n = ::poll(&p, interrupt_fd >= 0 ? 1 : 0, until.poll_timeout_ms());
    if (n > 0) {
      return false;
    }
    if (n == 0 || until.expired()) {
      return true;
    }
  }
}

bool is_final(ErrorKind kind) {
  return kind == ErrorKind::interrupted || kind == ErrorKind::auth ||
         kind == ErrorKind::config;
}

}  // namespace

std::string SentinelGroup::Named::address() const {
  return host_port(host, port);
}

Result<std::shared_ptr<SentinelGroup>> SentinelGroup::create(
    const config::Endpoint& ep, std::shared_ptr<const net::TlsContext> tls,
    Deadline deadline) {
  std::shared_ptr<SentinelGroup> g(new SentinelGroup(ep, std::move(tls)));
  std::vector<std::string> failures;
  for (const auto& a : ep.sentinel->sentinels) {
    Sentinel s;
    s.endpoint.host = a.host;
    s.endpoint.port = a.port;
    s.endpoint.user = ep.sentinel->user;
    s.endpoint.password = ep.sentinel->password;
    s.endpoint.tls = ep.tls;
    auto addresses = redis::resolve(s.endpoint, deadline);
    if (!addresses) {
      failures.push_back(addresses.error().message);
      continue;
    }
    s.addresses = std::move(addresses.value());
    g->m_sentinels.push_back(std::move(s));
  }
  if (g->m_sentinels.empty()) {
    return Error{ErrorKind::io,
                 fmt::format("no sentinel of master '{}' is reachable: {}",
                             ep.sentinel->master, join(failures))};
  }
  for (const auto& f : failures) {
    GODISLOCK_WARN("{}; asking the other sentinels", f);
  }
  return g;
}

std::vector<SentinelGroup::Sentinel> SentinelGroup::sentinels_in_order() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_sentinels;
}

// The client guide: the sentinel that answered is asked first next time.
void SentinelGroup::answered(const std::string& sentinel) {
  std::lock_guard<std::mutex> lock(m_mutex);
  auto it = std::find_if(
      m_sentinels.begin(), m_sentinels.end(),
      [&](const Sentinel& s) { return s.endpoint.redacted() == sentinel; });
  if (it != m_sentinels.end()) {
    std::rotate(m_sentinels.begin(), it, it + 1);
  }
}

Result<Connection> SentinelGroup::open_sentinel(const Sentinel& s,
                                                int interrupt_fd,
                                                Deadline deadline) const {
  auto c = Connection::open(s.endpoint, s.addresses, m_tls, deadline);
  if (!c) {
    return c.error();
  }
  c->set_interrupt_fd(interrupt_fd);
  return c;
}

// What sentinel `s` names as the master: its address, nullopt when it does
// not know the name. Errors: as Connection's, and server (an error reply,
// a malformed one).
Result<std::optional<SentinelGroup::Named>> SentinelGroup::ask_one(
    const Sentinel& s, int interrupt_fd, Deadline deadline) const {
  std::string who = "sentinel " + host_port(s.endpoint.host, s.endpoint.port);
  auto c = open_sentinel(s, interrupt_fd, deadline);
  if (!c) {
    return c.error();
  }
  auto r =
      c->command({"SENTINEL", "get-master-addr-by-name", m_master}, deadline);
  if (!r) {
    return r.error();
  }
  if (r->type == Reply::Type::nil) {
    return std::optional<Named>();
  }
  if (r->is_error()) {
    return Error{ErrorKind::server, fmt::format("{}: {}", who, r->str)};
  }
  auto port = r->type == Reply::Type::array && r->elements.size() == 2
                  ? util::parse_unsigned(r->elements[1].str)
                  : std::nullopt;
  if (!port || *port == 0 || *port > 65535) {
    return Error{ErrorKind::server, fmt::format("{}: malformed reply", who)};
  }
  return std::optional<Named>(
      Named{r->elements[0].str, static_cast<uint16_t>(*port), who});
}

// Whether most of the sentinels (of all configured, not only of those that
// answer) name `address` as the master now.
bool SentinelGroup::majority_names(const std::string& address, int interrupt_fd,
                                   Deadline deadline) const {
  auto order = sentinels_in_order();
  size_t yes = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    Deadline each = Deadline::after(deadline.remaining() / (order.size() - i))
                        .min(deadline);
    auto m = ask_one(order[i], interrupt_fd, each);
    if (m && *m && (*m)->address() == address) {
      yes++;
    }
  }
  return yes * 2 > m_endpoint.sentinel->sentinels.size();
}

// Asks each sentinel in turn, each within its share of the time left, for
// the master's address. The first answer wins, unless it names another
// master than the one in use (a failover not noticed yet) or one replaced
// during this run (a failover back to it): a stale sentinel could name
// either, so such an answer counts only once most sentinels give it.
Result<SentinelGroup::Named> SentinelGroup::ask_sentinels(int interrupt_fd,
                                                          Deadline deadline) {
  auto order = sentinels_in_order();
  std::vector<std::string> failures;
  bool unknown = false;
  bool named = false;
  size_t refused = 0;  // logins refused
  for (size_t i = 0; i < order.size(); ++i) {
    const Sentinel& s = order[i];
    std::string who = "sentinel " + host_port(s.endpoint.host, s.endpoint.port);
    Deadline each = Deadline::after(deadline.remaining() / (order.size() - i))
                        .min(deadline);
    auto r = ask_one(s, interrupt_fd, each);
    if (!r) {
      if (r.error().kind == ErrorKind::interrupted) {
        return r.error();
      }
      refused += r.error().kind == ErrorKind::auth ||
                 r.error().message.find("NOAUTH") != std::string::npos;
      failures.push_back(r.error().message);
      continue;
    }
    if (!*r) {
      unknown = true;
      failures.push_back(fmt::format("{} does not know it", who));
      continue;
    }
    named = true;
    answered(s.endpoint.redacted());
    Named m = **r;
    std::string current = current_master();
    bool trusted = is_trusted(m);
    if (trusted && (current.empty() || current == m.address())) {
      return m;
    }
    if (majority_names(m.address(), interrupt_fd, deadline)) {
      GODISLOCK_DEBUG("most sentinels name {} as master '{}'", m.address(),
                      m_master);
      std::lock_guard<std::mutex> lock(m_mutex);
      m_distrusted.erase(m.address());
      return m;
    }
    failures.push_back(fmt::format(
        "{} names {}, {}, and most sentinels do not (yet)", who, m.address(),
        trusted ? "not the master in use"
                : "replaced as master in a failover during this run"));
  }
  if (unknown && !named) {
    return Error{ErrorKind::config,
                 fmt::format("no sentinel knows master '{}' ({})", m_master,
                             join(failures))};
  }
  if (refused == order.size()) {
    // No retry can help: see --sentinel-user, --sentinel-password-file.
    return Error{ErrorKind::auth,
                 fmt::format("no sentinel of master '{}' accepted the login: "
                             "{}",
                             m_master, join(failures))};
  }
  if (!named) {
    return Error{ErrorKind::io,
                 fmt::format("no sentinel of master '{}' answered: {}",
                             m_master, join(failures))};
  }
  return Error{ErrorKind::busy,
               fmt::format("no sentinel named a usable master '{}': {}",
                           m_master, join(failures))};
}

bool SentinelGroup::is_trusted(const Named& m) const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_distrusted.count(m.address()) == 0;
}

// Connects to the master named, and checks that it says it is one: a
// sentinel may name a replica that is still being promoted, or an old
// master after a failover it has not heard of.
Result<Connection> SentinelGroup::open_master(const Named& m, int interrupt_fd,
                                              Deadline deadline) {
  config::Endpoint ep = m_endpoint;
  ep.sentinel.reset();
  ep.host = m.host;
  ep.port = m.port;
  auto fail = [&](const Error& e) {
    return Error{e.kind, fmt::format("master '{}' named by {}: {}", m_master,
                                     m.by, e.message)};
  };
  auto addresses = redis::resolve(ep, deadline);
  if (!addresses) {
    return fail(addresses.error());
  }
  auto c = Connection::open(ep, addresses.value(), m_tls, deadline);
  if (!c) {
    return fail(c.error());
  }
  c->set_interrupt_fd(interrupt_fd);
  auto role = c->command({"ROLE"}, deadline);
  if (!role) {
    return fail(role.error());
  }
  if (role->is_error()) {
    // ROLE is an @admin command an ACL user may lack: trust the sentinel.
    GODISLOCK_DEBUG("cannot check the role of {}: {}; trusting {}", m.address(),
                    role->str, m.by);
    return c;
  }
  if (role->type != Reply::Type::array || role->elements.empty()) {
    return fail(Error{ErrorKind::protocol, "malformed ROLE reply"});
  }
  const std::string& what = role->elements[0].str;
  if (what != "master") {
    return fail(
        Error{ErrorKind::busy,
              fmt::format("{} is a {}, not a master", m.address(),
                          what == "slave" ? std::string("replica") : what)});
  }
  return c;
}

void SentinelGroup::note_master(const std::string& address) {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (!m_current.empty() && m_current != address) {
    m_last_failover = fmt::format("master '{}' moved from {} to {}", m_master,
                                  m_current, address);
    m_distrusted.insert(m_current);
    m_generation++;
    GODISLOCK_DEBUG("{}", m_last_failover);
  }
  m_current = address;
}

Result<Connection> SentinelGroup::connect_master(int interrupt_fd,
                                                 Deadline deadline) {
  for (;;) {
    Error last{ErrorKind::timeout, "no time left to ask the sentinels"};
    auto m = ask_sentinels(interrupt_fd, deadline);
    if (m) {
      auto c = open_master(*m, interrupt_fd, deadline);
      if (c) {
        GODISLOCK_DEBUG("{} names {} as master '{}'", m->by, m->address(),
                        m_master);
        note_master(m->address());
        return c;
      }
      last = c.error();
    } else {
      last = m.error();
    }
    if (is_final(last.kind)) {
      return last;
    }
    if (deadline.remaining() <= k_retry_pause) {
      // Unreachable or not a master to the end: the server is unavailable.
      return Error{last.kind == ErrorKind::busy ? ErrorKind::io : last.kind,
                   last.message};
    }
    GODISLOCK_DEBUG("{}; asking the sentinels again", last.message);
    if (!pause_unless_interrupted(k_retry_pause, interrupt_fd, deadline)) {
      return Error{ErrorKind::interrupted, "interrupted by a signal"};
    }
  }
}

void SentinelGroup::distrust(const std::string& address,
                             const std::string& why) {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (address.empty()) {
    return;
  }
  m_distrusted.insert(address);
  m_generation++;
  m_last_failover = why;
  if (m_current == address) {
    m_current.clear();
  }
  GODISLOCK_DEBUG("{}; {} is not trusted again in this run", why, address);
}

uint64_t SentinelGroup::generation() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_generation;
}

std::string SentinelGroup::last_failover() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_last_failover;
}

std::string SentinelGroup::current_master() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_current;
}

Result<SwitchWatch> SentinelGroup::watch_switches(int interrupt_fd,
                                                  Deadline deadline) {
  auto order = sentinels_in_order();
  std::vector<std::string> failures;
  for (size_t i = 0; i < order.size(); ++i) {
    const Sentinel& s = order[i];
    std::string who = "sentinel " + host_port(s.endpoint.host, s.endpoint.port);
    Deadline each = Deadline::after(deadline.remaining() / (order.size() - i))
                        .min(deadline);
    auto c = open_sentinel(s, interrupt_fd, each);
    if (!c) {
      if (c.error().kind == ErrorKind::interrupted) {
        return c.error();
      }
      failures.push_back(c.error().message);
      continue;
    }
    // Both in one write: the sentinel handles them back to back, so that a
    // failover is either in the address or announced on the subscription.
    auto st = c->send_encoded(
        encode_command({"SENTINEL", "get-master-addr-by-name", m_master}) +
            encode_command({"SUBSCRIBE", "+switch-master"}),
        each);
    auto addr = st ? c->read_reply(each) : Result<Reply>(st.error());
    auto sub = addr ? c->read_reply(each) : addr;
    if (!sub) {
      if (sub.error().kind == ErrorKind::interrupted) {
        return sub.error();
      }
      failures.push_back(sub.error().message);
      continue;
    }
    if (sub->type != Reply::Type::array || sub->elements.empty() ||
        sub->elements[0].str != "subscribe") {
      failures.push_back(fmt::format("{}: SUBSCRIBE refused: {}", who,
                                     sub->is_error() ? sub->str : "bad reply"));
      continue;
    }
    std::string pending;
    if (addr->type == Reply::Type::array && addr->elements.size() == 2) {
      std::string named =
          host_port(addr->elements[0].str, addr->elements[1].str);
      std::string current = current_master();
      bool stale;
      {
        std::lock_guard<std::mutex> lock(m_mutex);
        stale = m_distrusted.count(named) != 0;
      }
      if (!current.empty() && named != current && !stale &&
          majority_names(named, interrupt_fd, deadline)) {
        pending = fmt::format("{} names {} as master '{}', not {}", who, named,
                              m_master, current);
        distrust(current, pending);
      }
    }
    answered(s.endpoint.redacted());
    return SwitchWatch(shared_from_this(), std::move(c.value()), pending);
  }
  return Error{ErrorKind::io,
               fmt::format("no sentinel of master '{}' answered: {}", m_master,
                           join(failures))};
}

Result<std::string> SwitchWatch::wait(Deadline until) {
  if (!m_pending.empty()) {
    return std::exchange(m_pending, std::string());
  }
  for (;;) {
    auto r = m_conn.read_reply(until, /*idle_ok=*/true);
    if (!r) {
      if (r.error().kind == ErrorKind::timeout && !m_conn.is_broken()) {
        return std::string();
      }
      return r.error();
    }
    // ["message", "+switch-master", "NAME OLDIP OLDPORT NEWIP NEWPORT"]
    if (r->type != Reply::Type::array || r->elements.size() != 3 ||
        r->elements[0].str != "message") {
      return Error{ErrorKind::protocol, "unexpected message on subscription"};
    }
    std::vector<std::string> words;
    std::string_view payload = r->elements[2].str;
    while (!payload.empty()) {
      size_t space = payload.find(' ');
      words.emplace_back(payload.substr(0, space));
      payload.remove_prefix(space == std::string_view::npos ? payload.size()
                                                            : space + 1);
    }
    if (words.size() != 5 || words[0] != m_group->master_name()) {
      continue;  // another master's failover
    }
    std::string from = host_port(words[1], words[2]);
    std::string to = host_port(words[3], words[4]);
    std::string what =
        fmt::format("Sentinel failover of master '{}' from {} to {}",
                    m_group->master_name(), from, to);
    m_group->distrust(from, what);
    return what;
  }
}

}  // namespace godislock::redis
