// SPDX-License-Identifier: MIT
#include "backend/redis_backend.hpp"

#include "backend/cluster_backend.hpp"
#include "backend/redis_scripts.hpp"
#include "redis/connection.hpp"
#include "redis/resp.hpp"
#include "util/log.hpp"
#include "util/number.hpp"

#include <fmt/format.h>

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

// A SCAN pattern matching `text` literally.
std::string glob_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  return out;
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

  Result<Wakeup> wait(Deadline until) override {
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

 private:
  Connection m_conn;
  std::shared_ptr<const uint64_t> m_latest_seq;
};

class RedisBackend final : public Backend {
 public:
  // `addresses`: the endpoint's, resolved once by open_redis() and shared
  // by every clone, so that no connection or reconnect looks the name up
  // again (a name server that stops answering then cannot hold up a
  // refresh past the lease).
  // `tls`: the endpoint's TLS context (null without TLS), likewise made
  // once and shared, so that the trust store is read once per process.
  RedisBackend(Settings settings,
               std::shared_ptr<const std::vector<net::Address>> addresses,
               std::shared_ptr<const net::TlsContext> tls)
      : m_settings(std::move(settings)),
        m_keys(redis_keys(m_settings.prefix, m_settings.name)),
        m_addresses(std::move(addresses)),
        m_tls(std::move(tls)) {}

  util::Status connect(Deadline deadline) {
    auto c =
        Connection::open(m_settings.endpoint, *m_addresses, m_tls, deadline);
    if (!c) {
      return c.error();
    }
    m_conn.emplace(std::move(c.value()));
    m_conn->set_interrupt_fd(m_interrupt_fd);
    return util::ok_status();
  }

  Result<Attempt> acquire(const std::string& token, Millis ttl, Mode mode,
                          Deadline deadline) override {
    if (mode == Mode::queue) {
      ++*m_queue_seq;
    }
    AcquireArgs args{token,
                     ttl,
                     mode,
                     m_settings.limit,
                     m_settings.shared,
                     &m_settings.holder,
                     *m_queue_seq};
    auto r = eval(acquire_call(m_keys, args), deadline);
    if (!r) {
      return r.error();
    }
    return decode_acquire(*r, m_keys);
  }

  Result<bool> refresh(const std::string& token, Millis ttl,
                       Deadline deadline) override {
    auto r = eval(
        refresh_call(m_keys, token, ttl, m_settings.limit, m_settings.shared),
        deadline);
    if (!r) {
      return r.error();
    }
    return decode_token_check(*r, "refresh");
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
    if (!m_conn || m_conn->is_broken()) {
      m_conn.reset();
      GODISLOCK_TRY(connect(deadline));
    }
    std::set<std::string> names;
    std::string cursor = "0";
    std::string pattern = glob_escape(m_settings.prefix) + "{*";
    do {
      auto r = m_conn->command(
          {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}, deadline);
      if (!r) {
        return r.error();
      }
      if (r->is_error()) {
        return Error{classify_server_error(r->str),
                     fmt::format("SCAN: {}", r->str)};
      }
      if (r->type != Reply::Type::array || r->elements.size() != 2) {
        return Error{ErrorKind::protocol, "SCAN: malformed reply"};
      }
      cursor = r->elements[0].str;
      for (const Reply& key : r->elements[1].elements) {
        if (auto name = name_of_key(m_settings.prefix, key.str)) {
          names.insert(*name);
        }
      }
    } while (cursor != "0");
    return std::vector<std::string>(names.begin(), names.end());
  }

  Result<std::unique_ptr<ReleaseWatch>> watch(const std::string& token,
                                              bool fair,
                                              Deadline deadline) override {
    auto c =
        Connection::open(m_settings.endpoint, *m_addresses, m_tls, deadline);
    if (!c) {
      return c.error();
    }
    c->set_interrupt_fd(m_interrupt_fd);
    std::string channel =
        fair ? redis_wake_channel(m_keys, token) : m_keys.channel;
    auto r = c->command({"SUBSCRIBE", channel}, deadline);
    if (!r) {
      return r.error();
    }
    if (r->is_error()) {
      return Error{classify_server_error(r->str),
                   fmt::format("SUBSCRIBE {}: {}", channel, r->str)};
    }
    // The confirmation ["subscribe", channel, 1] comes before any message.
    if (r->type != Reply::Type::array || r->elements.empty() ||
        r->elements[0].str != "subscribe") {
      return Error{ErrorKind::protocol, "SUBSCRIBE: unexpected reply"};
    }
    return std::unique_ptr<ReleaseWatch>(std::make_unique<RedisWatch>(
        std::move(c.value()),
        // Only a fair waiter for the exclusive lock is ever handed it.
        fair && m_settings.limit == 1 && !m_settings.shared
            ? std::shared_ptr<const uint64_t>(m_queue_seq)
            : nullptr));
  }

  void set_interrupt_fd(int fd) override {
    m_interrupt_fd = fd;
    if (m_conn) {
      m_conn->set_interrupt_fd(fd);
    }
  }

  std::unique_ptr<Backend> clone() const override {
    return std::make_unique<RedisBackend>(m_settings, m_addresses, m_tls);
  }

  std::string describe() const override {
    return m_settings.endpoint.redacted();
  }

 private:
  using Status = util::Status;

  // Runs a script by EVALSHA, falling back to EVAL when the server lost it
  // (SCRIPT FLUSH, restart, failover). Reconnects first if the connection
  // broke on an earlier call. Server errors become Errors.
  Result<Reply> eval(const ScriptCall& call, Deadline deadline,
                     bool ping_first = false) {
    const Script& script = *call.script;
    const auto& keys = call.keys;
    const auto& args = call.args;
    if (!m_conn || m_conn->is_broken()) {
      m_conn.reset();
      GODISLOCK_TRY(connect(deadline));
    }
    std::vector<std::string> argv;
    argv.reserve(3 + keys.size() + args.size());
    argv.emplace_back("EVALSHA");
    argv.emplace_back(script.sha1);
    argv.push_back(std::to_string(keys.size()));
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
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
    if (r && r->is_error() && r->str.rfind("NOSCRIPT", 0) == 0) {
      GODISLOCK_DEBUG("{} script not cached on the server; sending it",
                      script.name);
      argv[0] = "EVAL";
      argv[1] = script.source;
      r = m_conn->command(argv, deadline);
    }
    if (!r) {
      return r.error();
    }
    if (r->is_error()) {
      // Before AUTH, Redis refuses requests of more than a few words with
      // a protocol error instead of NOAUTH (and closes the connection).
      if (r->str.find("Protocol error: unauthenticated") != std::string::npos) {
        r->str = "NOAUTH Authentication required.";
      }
      return Error{classify_server_error(r->str),
                   fmt::format("{} script: {}", script.name, r->str)};
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
  std::optional<Connection> m_conn;
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
  // Both redis:// and unix:// speak RESP; an etcd:// scheme will pick its
  // own backend here.
  if (settings.endpoint.is_cluster()) {
    return open_cluster(settings, deadline);
  }
  return open_redis(settings, deadline);
}

}  // namespace godislock::backend
