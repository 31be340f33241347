// SPDX-License-Identifier: MIT
#include "backend/redis_backend.hpp"

#include "backend/cluster_backend.hpp"
#include "backend/etcd_backend.hpp"
#include "backend/redis_scripts.hpp"
#include "redis/connection.hpp"
#include "redis/resp.hpp"
#include "redis/sentinel.hpp"
#include "util/log.hpp"
#include "util/number.hpp"

#include <fmt/format.h>

#include <poll.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

namespace godislock::backend {

using redis::Connection;
using redis::Reply;
using util::Deadline;
using util::Error;
using util::ErrorKind;
using util::Result;

RedisKeys redis_keys(const std::string& prefix, const std::string& name) {
  std::string lock = prefix + "{" + name + "}";
  return RedisKeys{lock, lock + ":fence", lock + ":released", lock + ":queue"};
}

std::string redis_wake_channel(const RedisKeys& keys,
                               const std::string& token) {
  return keys.lock + ":wake:" + token;
}

// The lock name in one of its keys (PREFIX{NAME} or PREFIX{NAME}:SUFFIX),
// or nullopt for a key that is not one of ours.
std::optional<std::string> name_of_key(const std::string& prefix,
                                       const std::string& key) {
  std::string head = prefix + "{";
  if (key.size() <= head.size() || key.compare(0, head.size(), head) != 0) {
    return std::nullopt;
  }
  if (key.back() == '}') {
    return key.substr(head.size(), key.size() - head.size() - 1);
  }
  size_t end = key.rfind("}:");
  if (end == std::string::npos || end < head.size()) {
    return std::nullopt;
  }
  std::string suffix = key.substr(end + 2);
  static const char* const k_suffixes[] = {"fence", "queue", "limit",
                                           "readers"};
  static const char* const k_prefixes[] = {"waiter:", "holder:", "slot:"};
  bool known = false;
  for (const char* s : k_suffixes) {
    known = known || suffix == s;
  }
  for (const char* s : k_prefixes) {
    known = known || suffix.rfind(s, 0) == 0;
  }
  if (!known) {
    return std::nullopt;
  }
  return key.substr(head.size(), end - head.size());
}

namespace {

// READONLY (a replica) or MASTERDOWN (a replica cut off from its master),
// also inside a script's error text.
bool is_not_master(const std::string& text) {
  return text.rfind("READONLY", 0) == 0 || text.rfind("MASTERDOWN", 0) == 0 ||
         text.find("-READONLY") != std::string::npos ||
         text.find("-MASTERDOWN") != std::string::npos;
}

}  // namespace

ErrorKind classify_server_error(const std::string& text) {
  if (text.rfind("NOAUTH", 0) == 0 || text.rfind("WRONGPASS", 0) == 0 ||
      text.rfind("NOPERM", 0) == 0) {
    return ErrorKind::auth;
  }
  if (text.rfind("BUSY", 0) == 0 || text.rfind("LOADING", 0) == 0 ||
      text.rfind("TRYAGAIN", 0) == 0 || text.rfind("MASTERDOWN", 0) == 0) {
    return ErrorKind::busy;
  }
  return ErrorKind::server;
}

namespace {}  // namespace

// A NOPERM from the server itself (for a command godislock sends, before
// any script could check) is told in the same words as a script's own
// check.
Error server_error(const std::string& what, const std::string& text) {
  std::string message = fmt::format("{}: {}", what, text);
  constexpr std::string_view k_run =
      "NOPERM this user has no permissions to "
      "run the '";
  if (text.rfind(k_run, 0) == 0) {
    size_t end = text.find('\'', k_run.size());
    if (end != std::string::npos) {
      message +=
          fmt::format(": the ACL user lacks +{} (see godislock acl-rule)",
                      text.substr(k_run.size(), end - k_run.size()));
    }
  } else if (text.rfind("NOPERM this user has no permissions to access", 0) ==
             0) {
    bool channels = text.find("channel") != std::string::npos;
    message += fmt::format(
        ": the ACL user lacks access to the lock's {} (see godislock "
        "acl-rule)",
        channels ? "channels" : "keys");
  }
  return Error{classify_server_error(text), std::move(message)};
}

util::Status scan_lock_names(redis::Connection& conn, const std::string& prefix,
                             const std::string& where,
                             std::set<std::string>& names, Deadline deadline) {
  std::string pattern = glob_literal(prefix) + "{*";
  std::string cursor = "0";
  do {
    auto r = conn.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"},
                          deadline);
    if (!r) {
      return r.error();
    }
    if (r->is_error()) {
      return server_error(where.empty() ? "SCAN" : where + ": SCAN", r->str);
    }
    if (r->type != Reply::Type::array || r->elements.size() != 2) {
      return Error{ErrorKind::protocol, "SCAN: malformed reply"};
    }
    cursor = r->elements[0].str;
    for (const Reply& key : r->elements[1].elements) {
      if (auto name = name_of_key(prefix, key.str)) {
        names.insert(*name);
      }
    }
  } while (cursor != "0");
  return util::ok_status();
}

// A hand-over message, "granted SEQ FENCE" (release.lua): the fence when
// SEQ is `latest_seq`, nullopt for any other payload.
std::optional<uint64_t> parse_grant(std::string_view payload,
                                    uint64_t latest_seq) {
  constexpr std::string_view k_head = "granted ";
  if (payload.substr(0, k_head.size()) != k_head) {
    return std::nullopt;
  }
  payload.remove_prefix(k_head.size());
  auto space = payload.find(' ');
  if (space == std::string_view::npos) {
    return std::nullopt;
  }
  auto seq = util::parse_unsigned(payload.substr(0, space));
  auto fence = util::parse_unsigned(payload.substr(space + 1));
  if (!seq || !fence || *seq != latest_seq || *fence == 0) {
    return std::nullopt;
  }
  return fence;
}

namespace {

class RedisWatch final : public ReleaseWatch {
 public:
  // `latest_seq` is the backend's number of its latest queue-mode attempt
  // (shared with it); null where no hand-over can come (race mode, shared
  // or counted locks).
  RedisWatch(Connection conn, std::shared_ptr<const uint64_t> latest_seq)
      : m_conn(std::move(conn)), m_latest_seq(std::move(latest_seq)) {}

  // Through Sentinel, the watch also listens for failovers (on a sentinel
  // connection) and ends with an error when one is announced, so that the
  // waiter subscribes again on the new master: the old one may go on
  // answering for seconds, but releases are published on the new one.
  void listen_for_failovers(redis::SwitchWatch switches, int interrupt_fd) {
    m_switches.emplace(std::move(switches));
    m_interrupt_fd = interrupt_fd;
  }

  Result<Wakeup> wait(Deadline until) override {
    if (!m_switches) {
      return wait_release(until);
    }
    for (;;) {
      // A look at each without waiting first: over TLS, bytes may wait
      // inside the session, where poll(2) does not see them.
      auto sw = m_switches->wait(Deadline::at(util::Clock::now()));
      if (!sw) {
        return Error{sw.error().kind == ErrorKind::interrupted
                         ? ErrorKind::interrupted
                         : ErrorKind::io,
                     "sentinel subscription lost: " + sw.error().message};
      }
      if (!sw->empty()) {
        return Error{ErrorKind::io, *sw};
      }
      auto w = wait_release(Deadline::at(util::Clock::now()));
      if (!w || *w || until.expired()) {
        return w;
      }
      pollfd p[3] = {{m_conn.fd(), POLLIN, 0},
                     {m_switches->fd(), POLLIN, 0},
                     {m_interrupt_fd, POLLIN, 0}};
      int n = ::poll(p, m_interrupt_fd >= 0 ? 3 : 2, until.poll_timeout_ms());
      if (n > 0 && (p[2].revents & POLLIN) != 0) {
        return Error{ErrorKind::interrupted, "interrupted by a signal"};
      }
    }
  }

 private:
  Result<Wakeup> wait_release(Deadline until) {
    auto reply = m_conn.read_reply(until, /*idle_ok=*/true);
    if (!reply) {
      if (reply.error().kind == ErrorKind::timeout && !m_conn.is_broken()) {
        return Wakeup{};  // no announcement before `until`
      }
      return reply.error();
    }
    // ["message", channel, payload]; anything else means the subscription
    // is not what we think it is.
    if (reply->type == Reply::Type::array && reply->elements.size() == 3 &&
        reply->elements[0].str == "message") {
      Wakeup w;
      w.arrived = true;
      // A hand-over answering an older registration than our latest
      // attempt (its message overtaken by that attempt's reply) counts as
      // a plain wake-up: that attempt's reply already told the truth, and
      // the next attempt will find out what is left of it.
      if (m_latest_seq) {
        w.granted_fence = parse_grant(reply->elements[2].str, *m_latest_seq);
      }
      return w;
    }
    return Error{ErrorKind::protocol, "unexpected message on subscription"};
  }

  Connection m_conn;
  std::shared_ptr<const uint64_t> m_latest_seq;
  std::optional<redis::SwitchWatch> m_switches;
  int m_interrupt_fd = -1;
};

// A holder's watch on failovers: one sentinel's +switch-master.
class SentinelFailoverWatch final : public FailoverWatch {
 public:
  explicit SentinelFailoverWatch(redis::SwitchWatch w)
      : m_watch(std::move(w)) {}
  Result<std::string> wait(Deadline until) override {
    return m_watch.wait(until);
  }

 private:
  redis::SwitchWatch m_watch;
};

// "only 0 of 1 replicas acknowledged the acquisition within 1s"
std::string shortfall(long long got, unsigned wanted, const char* what,
                      Millis timeout) {
  return fmt::format("only {} of {} replica{} acknowledged the {} within {} ms",
                     got, wanted, wanted == 1 ? "" : "s", what,
                     timeout.count());
}

class RedisBackend final : public Backend {
 public:
  // `addresses`: the endpoint's, resolved once by open_redis() and shared
  // by every clone, so that no connection or reconnect looks the name up
  // again (a name server that stops answering then cannot hold up a
  // refresh past the lease).
  // `tls`: the endpoint's TLS context (null without TLS), likewise made
  // once and shared, so that the trust store is read once per process.
  // `sentinel`: for a redis-sentinel:// endpoint (else null), shared by
  // every clone likewise: it finds the master on each (re)connection.
  RedisBackend(Settings settings,
               std::shared_ptr<const std::vector<net::Address>> addresses,
               std::shared_ptr<const net::TlsContext> tls,
               std::shared_ptr<redis::SentinelGroup> sentinel = nullptr)
      : m_settings(std::move(settings)),
        m_keys(redis_keys(m_settings.prefix, m_settings.name)),
        m_addresses(std::move(addresses)),
        m_tls(std::move(tls)),
        m_sentinel(std::move(sentinel)) {}

  util::Status connect(Deadline deadline) {
    auto c = open_connection(deadline);
    if (!c) {
      return c.error();
    }
    m_conn.emplace(std::move(c.value()));
    if (m_sentinel) {
      m_conn_generation = m_sentinel->generation();
      m_conn_master = m_sentinel->current_master();
    }
    return util::ok_status();
  }

  Result<Attempt> acquire(const std::string& token, Millis ttl, Mode mode,
                          Deadline deadline) override {
    auto r = eval(
        acquire_call(m_keys, m_settings, token, ttl, mode, m_queue_seq.get()),
        deadline, /*ping_first=*/false, /*carry_login=*/true);
    if (!r) {
      if (m_conn && m_conn->ran_despite_failed_login()) {
        give_back_after_failed_login(token, deadline);
      }
      return r.error();
    }
    auto a = decode_acquire(*r, m_keys);
    if (!a || a->state != Outcome::acquired || m_settings.replicas == 0) {
      return a;
    }
    return replicated_or_given_back(token, std::move(a.value()), deadline);
  }

  Result<bool> refresh(const std::string& token, Millis ttl,
                       Deadline deadline) override {
    auto r = eval(
        refresh_call(m_keys, token, ttl, m_settings.limit, m_settings.shared),
        deadline);
    if (!r) {
      return r.error();
    }
    auto ours = decode_token_check(*r, "refresh");
    if (!ours || !*ours || m_settings.replicas == 0) {
      return ours;
    }
    // Not acknowledged by enough replicas: a failed refresh, so that the
    // lease is not extended on our side (the master's TTL was).
    auto acked = wait_replicas(deadline);
    if (!acked) {
      return acked.error();
    }
    if (*acked < m_settings.replicas) {
      return Error{ErrorKind::busy,
                   shortfall(*acked, m_settings.replicas, "refresh",
                             m_settings.replica_timeout)};
    }
    return true;
  }

  Result<bool> release(const std::string& token, Deadline deadline) override {
    // The PING in front gets the next holder woken before we are: Redis
    // writes its clients' pending output last-in-first-out, so a client
    // that already owes a reply (PONG) when the script publishes is
    // written after the woken waiter. Otherwise our reply goes out first,
    // and on a busy machine our own wake-up and exit can keep Redis off
    // the CPU before it sends the hand-over (measured in bench/).
    auto r =
        eval(release_call(m_keys, token, m_settings.limit, m_settings.shared),
             deadline, /*ping_first=*/true);
    if (!r) {
      return r.error();
    }
    return decode_token_check(*r, "release");
  }

  Result<LockStatus> status(const std::string& name,
                            Deadline deadline) override {
    return look(redis_keys(m_settings.prefix, name), "look", deadline);
  }

  Result<LockStatus> break_lock(Deadline deadline) override {
    return look(m_keys, "break", deadline);
  }

  Result<std::vector<std::string>> list_names(Deadline deadline) override {
    if (is_stale()) {
      m_conn.reset();
      GODISLOCK_TRY(connect(deadline));
    }
    std::set<std::string> names;
    GODISLOCK_TRY(
        scan_lock_names(*m_conn, m_settings.prefix, "", names, deadline));
    return std::vector<std::string>(names.begin(), names.end());
  }

  Result<std::unique_ptr<ReleaseWatch>> watch(const std::string& token,
                                              bool fair,
                                              Deadline deadline) override {
    auto c = open_connection(deadline);
    if (!c) {
      return c.error();
    }
    std::string channel =
        fair ? redis_wake_channel(m_keys, token) : m_keys.channel;
    auto r = c->command({"SUBSCRIBE", channel}, deadline);
    if (!r) {
      return r.error();
    }
    if (r->is_error()) {
      return server_error("SUBSCRIBE " + channel, r->str);
    }
    // The confirmation ["subscribe", channel, 1] comes before any message.
    if (r->type != Reply::Type::array || r->elements.empty() ||
        r->elements[0].str != "subscribe") {
      return Error{ErrorKind::protocol, "SUBSCRIBE: unexpected reply"};
    }
    auto w = std::make_unique<RedisWatch>(
        std::move(c.value()),
        // Only a fair waiter for the exclusive lock is ever handed it.
        fair && m_settings.limit == 1 && !m_settings.shared
            ? std::shared_ptr<const uint64_t>(m_queue_seq)
            : nullptr);
    if (m_sentinel) {
      auto switches = m_sentinel->watch_switches(m_interrupt_fd, deadline);
      if (!switches) {
        return switches.error();
      }
      w->listen_for_failovers(std::move(switches.value()), m_interrupt_fd);
    }
    return std::unique_ptr<ReleaseWatch>(std::move(w));
  }

  void set_interrupt_fd(int fd) override {
    m_interrupt_fd = fd;
    if (m_conn) {
      m_conn->set_interrupt_fd(fd);
    }
  }

  std::unique_ptr<Backend> clone() const override {
    return std::make_unique<RedisBackend>(m_settings, m_addresses, m_tls,
                                          m_sentinel);
  }

  std::string describe() const override {
    return m_settings.endpoint.redacted();
  }

  bool can_fail_over() const override { return m_sentinel != nullptr; }

  Result<std::unique_ptr<FailoverWatch>> watch_failover(
      int interrupt_fd, Deadline deadline) override {
    if (!m_sentinel) {
      return std::unique_ptr<FailoverWatch>();
    }
    auto w = m_sentinel->watch_switches(interrupt_fd, deadline);
    if (!w) {
      return w.error();
    }
    return std::unique_ptr<FailoverWatch>(
        std::make_unique<SentinelFailoverWatch>(std::move(w.value())));
  }

  std::string last_failover() const override {
    return m_sentinel ? m_sentinel->last_failover() : std::string();
  }

 private:
  using Status = util::Status;

  // The acquire script went out with a login the server refused, and ran
  // anyway (as the default user, or in database 0): what it took (the lock,
  // a place in the queue) is released on the same connection, which still
  // runs as that user in that database, and the connection is dropped. The
  // caller reports the login's error. Should the release fail too, what it
  // took lapses with its TTL.
  void give_back_after_failed_login(const std::string& token,
                                    Deadline deadline) {
    auto r =
        eval(release_call(m_keys, token, m_settings.limit, m_settings.shared),
             deadline);
    GODISLOCK_DEBUG("login refused but the acquire script ran: released {}",
                    r ? "what it took" : "nothing: " + r.error().message);
    m_conn.reset();
  }

  // A new connection to the server: the endpoint's, or the master the
  // sentinels name now (found again on every reconnect).
  Result<Connection> open_connection(Deadline deadline) {
    if (m_sentinel) {
      return m_sentinel->connect_master(m_interrupt_fd, deadline);
    }
    // AUTH and SELECT go out with the first command (see eval).
    auto c = Connection::open(m_settings.endpoint, *m_addresses, m_tls,
                              deadline, Connection::Login::later);
    if (c) {
      c->set_interrupt_fd(m_interrupt_fd);
    }
    return c;
  }

  // The connection must be replaced: none yet, broken, or made before the
  // latest failover signal (it may lead to the old master).
  bool is_stale() const {
    return !m_conn || m_conn->is_broken() ||
           (m_sentinel && m_conn_generation != m_sentinel->generation());
  }

  // WAIT for --replicas on the connection that wrote: the number of
  // replicas that acknowledged its writes. Bounded by `deadline`, with
  // room left for the reply (WAIT 0 would wait forever).
  Result<long long> wait_replicas(Deadline deadline) {
    auto left =
        std::chrono::duration_cast<Millis>(deadline.remaining() * 3 / 4);
    Millis timeout =
        std::max(Millis(1), std::min(m_settings.replica_timeout, left));
    auto r = m_conn->command({"WAIT", std::to_string(m_settings.replicas),
                              std::to_string(timeout.count())},
                             deadline);
    if (!r) {
      return r.error();
    }
    if (r->type != Reply::Type::integer) {
      return Error{
          r->is_error() ? classify_server_error(r->str) : ErrorKind::protocol,
          fmt::format("WAIT: {}", r->is_error() ? r->str : "malformed reply")};
    }
    return r->integer;
  }

  // An acquisition that too few replicas acknowledged is given back (and
  // the token leaves the queue): it is reported as held for
  // replica_timeout, after which the waiter tries again.
  Result<Attempt> replicated_or_given_back(const std::string& token, Attempt a,
                                           Deadline deadline) {
    auto acked = wait_replicas(deadline);
    if (!acked) {
      return acked.error();
    }
    if (*acked >= m_settings.replicas) {
      return a;
    }
    std::string why = shortfall(*acked, m_settings.replicas, "acquisition",
                                m_settings.replica_timeout);
    GODISLOCK_DEBUG("{}; giving the lock back", why);
    auto released = release(token, deadline);
    if (!released) {
      return released.error();
    }
    Attempt held;
    held.state = Outcome::held;
    held.holder_ttl = m_settings.replica_timeout;
    held.detail = why;
    return held;
  }

  // Runs a script by EVALSHA, falling back to EVAL when the server lost it
  // (SCRIPT FLUSH, restart, failover). Reconnects first if the connection
  // broke on an earlier call. Server errors become Errors.
  //
  // A new connection's AUTH and SELECT go out in the same write as the
  // script when `carry_login` (acquire: a refused login is then undone by
  // give_back_after_failed_login), and on their own, a round trip earlier,
  // for every other script: a refresh, a release or a break must never run
  // as another user or in another database.
  Result<Reply> eval(const ScriptCall& call, Deadline deadline,
                     bool ping_first = false, bool carry_login = false) {
    const Script& script = *call.script;
    if (is_stale()) {
      m_conn.reset();
      GODISLOCK_TRY(connect(deadline));
    }
    if (!carry_login) {
      GODISLOCK_TRY(m_conn->finish_login(deadline));
    }
    std::vector<std::string> argv = evalsha_argv(call);
    if (ping_first) {
      GODISLOCK_TRY(m_conn->send_encoded(
          redis::encode_command({"PING"}) + redis::encode_command(argv),
          deadline));
      auto pong = m_conn->read_reply(deadline);
      if (!pong) {
        return pong.error();
      }
      if (pong->is_error()) {
        // Refused like the script would be (NOAUTH, NOPERM): the script's
        // reply, read below, says the same in its own words.
        GODISLOCK_DEBUG("PING before the {} script: {}", script.name,
                        pong->str);
      }
    } else {
      GODISLOCK_TRY(m_conn->send(argv, deadline));
    }
    auto r = m_conn->read_reply(deadline);
    if (r && is_noscript(*r)) {
      evalsha_to_eval(argv, script);
      r = m_conn->command(argv, deadline);
    }
    if (!r) {
      return r.error();
    }
    if (r->is_error() && m_sentinel && is_not_master(r->str)) {
      // The master became a replica (a failover we had not heard of): a
      // failover signal. Found again on the next call, which the waiter
      // makes at once (busy is transient).
      m_sentinel->distrust(
          m_conn_master,
          fmt::format("{} answered {}", m_conn_master,
                      r->str.find("READONLY") != std::string::npos
                          ? "READONLY"
                          : "MASTERDOWN"));
      m_conn.reset();
      return Error{ErrorKind::busy,
                   fmt::format("{} script: {}", script.name, r->str)};
    }
    if (r->is_error()) {
      return script_error(script, r->str);
    }
    return r;
  }

  Result<LockStatus> look(const RedisKeys& keys, const char* what,
                          Deadline deadline) {
    auto r = eval(status_call(keys, what), deadline);
    if (!r) {
      return r.error();
    }
    return decode_status(*r);
  }

  Settings m_settings;
  RedisKeys m_keys;
  std::shared_ptr<const std::vector<net::Address>> m_addresses;
  std::shared_ptr<const net::TlsContext> m_tls;
  std::shared_ptr<redis::SentinelGroup> m_sentinel;
  std::optional<Connection> m_conn;
  uint64_t m_conn_generation = 0;  // m_sentinel's, when m_conn was made
  std::string m_conn_master;       // where m_conn leads (with m_sentinel)
  int m_interrupt_fd = -1;
  // The number of the latest queue-mode attempt (see RedisWatch).
  std::shared_ptr<uint64_t> m_queue_seq = std::make_shared<uint64_t>(0);
};

}  // namespace

Result<std::unique_ptr<Backend>> open_redis(const Settings& settings,
                                            Deadline deadline) {
  auto tls = redis::tls_context(settings.endpoint);
  if (!tls) {
    return tls.error();
  }
  if (tls.value() && !tls.value()->warning().empty()) {
    GODISLOCK_WARN("{}", tls.value()->warning());
  }
  if (settings.endpoint.sentinel) {
    auto group =
        redis::SentinelGroup::create(settings.endpoint, tls.value(), deadline);
    if (!group) {
      return group.error();
    }
    auto b = std::make_unique<RedisBackend>(
        settings, std::make_shared<const std::vector<net::Address>>(),
        std::move(tls.value()), std::move(group.value()));
    GODISLOCK_TRY(b->connect(deadline));
    return std::unique_ptr<Backend>(std::move(b));
  }
  auto addresses = redis::resolve(settings.endpoint, deadline);
  if (!addresses) {
    return addresses.error();
  }
  if (settings.endpoint.kind == config::Endpoint::Kind::tcp &&
      !net::parse_ip_literal(settings.endpoint.host, 0)) {
    std::string list;
    for (const auto& a : addresses.value()) {
      list += (list.empty() ? "" : ", ") + a.to_string();
    }
    GODISLOCK_DEBUG("'{}' resolved to {}; every connection uses these",
                    settings.endpoint.host, list);
  }
  auto b = std::make_unique<RedisBackend>(
      settings,
      std::make_shared<const std::vector<net::Address>>(
          std::move(addresses.value())),
      std::move(tls.value()));
  GODISLOCK_TRY(b->connect(deadline));
  return std::unique_ptr<Backend>(std::move(b));
}

Result<std::unique_ptr<Backend>> open(const Settings& settings,
                                      Deadline deadline) {
  // redis:// and unix:// speak RESP; etcd:// has a backend of its own, and
  // redis-cluster:// routes RESP by slot.
  if (settings.endpoint.kind == config::Endpoint::Kind::etcd) {
    return open_etcd(settings, deadline);
  }
  if (settings.endpoint.is_cluster()) {
    return open_cluster(settings, deadline);
  }
  return open_redis(settings, deadline);
}

}  // namespace godislock::backend
