// SPDX-License-Identifier: MIT
#include "config/url.hpp"

#include <fmt/format.h>

namespace godislock::config {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// Decodes %XX escapes; false on a truncated or non-hex escape.
bool percent_decode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) {
      return false;
    }
    int hi = hex_value(in[i + 1]);
    int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

bool parse_number(std::string_view s, long max, long* out) {
  if (s.empty() || s.size() > 10) {
    return false;
  }
  long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + (c - '0');
  }
  if (v > max) {
    return false;
  }
  *out = v;
  return true;
}

bool has_control(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return true;
    }
  }
  return false;
}

std::optional<Endpoint> parse_unix(std::string_view rest, std::string* why) {
  Endpoint ep;
  ep.kind = Endpoint::Kind::unix_socket;
  std::string_view path = rest;
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    path = rest.substr(0, q);
    query = rest.substr(q + 1);
  }
  std::string decoded;
  if (!percent_decode(path, &decoded)) {
    *why = "malformed percent-encoding in socket path";
    return std::nullopt;
  }
  if (decoded.empty() || decoded[0] != '/') {
    *why = "socket path must be absolute (unix:///path/to.sock)";
    return std::nullopt;
  }
  if (has_control(decoded)) {
    *why = "control character in socket path";
    return std::nullopt;
  }
  ep.path = decoded;
  if (!query.empty()) {
    if (query.substr(0, 3) != "db=") {
      *why = fmt::format("unknown query parameter '{}' (only db=N)", query);
      return std::nullopt;
    }
    if (!parse_number(query.substr(3), k_max_db, &ep.db)) {
      *why = fmt::format("database index '{}' is not a number from 0 to {}",
                         query.substr(3), k_max_db);
      return std::nullopt;
    }
  }
  return ep;
}

// "user:password", "user", or redis-cli's bare "password" into ep.
bool parse_userinfo(std::string_view userinfo, Endpoint* ep, std::string* why) {
  std::string_view user = userinfo;
  std::string_view pass;
  bool has_pass = false;
  if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
    user = userinfo.substr(0, colon);
    pass = userinfo.substr(colon + 1);
    has_pass = true;
  }
  if (!percent_decode(user, &ep->user)) {
    *why = "malformed percent-encoding in user name";
    return false;
  }
  if (has_pass) {
    if (!percent_decode(pass, &ep->password)) {
      *why = "malformed percent-encoding in password";
      return false;
    }
    ep->password_in_url = !ep->password.empty();
  } else if (!ep->user.empty()) {
    // redis://secret@host is redis-cli's form of a bare password.
    ep->password = ep->user;
    ep->user.clear();
    ep->password_in_url = true;
  }
  return true;
}

// "host", "host:port", "[v6]" or "[v6]:port"; port is nullopt when absent.
bool split_host_port(std::string_view hostport, std::string_view* host,
                     std::optional<std::string_view>* port, std::string* why) {
  *host = hostport;
  if (!hostport.empty() && hostport[0] == '[') {
    auto close = hostport.find(']');
    if (close == std::string_view::npos) {
      *why = "unterminated '[' in IPv6 address";
      return false;
    }
    *host = hostport.substr(1, close - 1);
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        *why = fmt::format("unexpected '{}' after IPv6 address", after);
        return false;
      }
      *port = after.substr(1);
    }
    return true;
  }
  auto colon = hostport.find(':');
  if (colon != std::string_view::npos) {
    if (hostport.find(':', colon + 1) != std::string_view::npos) {
      *why = "IPv6 address must be in brackets, e.g. redis://[::1]:6379";
      return false;
    }
    *host = hostport.substr(0, colon);
    *port = hostport.substr(colon + 1);
  }
  return true;
}

// "host[:port][/db]" into ep.
bool parse_host_part(std::string_view rest, Endpoint* ep, std::string* why) {
  std::string_view hostport = rest;
  std::string_view path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  }
  std::string_view host;
  std::optional<std::string_view> port;
  if (!split_host_port(hostport, &host, &port, why)) {
    return false;
  }
  if (!percent_decode(host, &ep->host)) {
    *why = "malformed percent-encoding in host";
    return false;
  }
  if (ep->host.empty()) {
    *why = "missing host";
    return false;
  }
  if (has_control(ep->host) ||
      ep->host.find_first_of(" /?#") != std::string::npos) {
    *why = "invalid character in host";
    return false;
  }
  if (port) {
    long p = 0;
    if (!parse_number(*port, 65535, &p) || p == 0) {
      *why = fmt::format("port '{}' is not a number from 1 to 65535", *port);
      return false;
    }
    ep->port = static_cast<uint16_t>(p);
  }
  if (!path.empty() && !parse_number(path, k_max_db, &ep->db)) {
    *why = fmt::format("database index '{}' is not a number from 0 to {}", path,
                       k_max_db);
    return false;
  }
  return true;
}

// "host[:port][,host[:port]...]" into the sentinels' addresses.
bool parse_sentinel_hosts(std::string_view list, SentinelSettings* s,
                          std::string* why) {
  if (list.empty()) {
    *why = "no sentinel given (redis-sentinel://host:port,.../MASTER)";
    return false;
  }
  for (;;) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    std::string_view host;
    std::optional<std::string_view> port;
    if (!split_host_port(item, &host, &port, why)) {
      return false;
    }
    SentinelSettings::Address a;
    if (!percent_decode(host, &a.host)) {
      *why = "malformed percent-encoding in sentinel host";
      return false;
    }
    if (a.host.empty()) {
      *why = fmt::format("missing sentinel host in '{}'", item);
      return false;
    }
    if (has_control(a.host) ||
        a.host.find_first_of(" /?#@") != std::string::npos) {
      *why = "invalid character in sentinel host";
      return false;
    }
    if (port) {
      long p = 0;
      if (!parse_number(*port, 65535, &p) || p == 0) {
        *why = fmt::format("sentinel port '{}' is not a number from 1 to 65535",
                           *port);
        return false;
      }
      a.port = static_cast<uint16_t>(p);
    }
    s->sentinels.push_back(std::move(a));
    if (comma == std::string_view::npos) {
      return true;
    }
    list.remove_prefix(comma + 1);
  }
}

// "MASTER[/db]" into the master's name and ep->db.
bool parse_sentinel_path(std::string_view path, Endpoint* ep,
                         std::string* why) {
  std::string_view name = path;
  std::optional<std::string_view> db;
  if (auto slash = path.find('/'); slash != std::string_view::npos) {
    name = path.substr(0, slash);
    db = path.substr(slash + 1);
  }
  if (!percent_decode(name, &ep->sentinel->master)) {
    *why = "malformed percent-encoding in master name";
    return false;
  }
  if (ep->sentinel->master.empty()) {
    *why = "missing master name (redis-sentinel://host:port,.../MASTER)";
    return false;
  }
  if (has_control(ep->sentinel->master) ||
      ep->sentinel->master.find(' ') != std::string::npos) {
    *why = "invalid character in master name";
    return false;
  }
  if (db && !parse_number(*db, k_max_db, &ep->db)) {
    *why = fmt::format("database index '{}' is not a number from 0 to {}", *db,
                       k_max_db);
    return false;
  }
  return true;
}

// What follows "redis-sentinel://".
std::optional<Endpoint> parse_sentinel(std::string_view rest, bool tls,
                                       std::string* why) {
  Endpoint ep;
  ep.tls.enabled = tls;
  ep.sentinel.emplace();
  size_t slash = rest.find('/');
  // Userinfo ends at the last '@' before the path, so that a password may
  // contain '@' unescaped, as redis-cli allows.
  std::string_view authority = rest.substr(0, slash);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    if (!parse_userinfo(authority.substr(0, at), &ep, why)) {
      return std::nullopt;
    }
    authority = authority.substr(at + 1);
  }
  if (!parse_sentinel_hosts(authority, &*ep.sentinel, why)) {
    return std::nullopt;
  }
  if (slash == std::string_view::npos) {
    *why = "missing master name (redis-sentinel://host:port,.../MASTER)";
    return std::nullopt;
  }
  if (!parse_sentinel_path(rest.substr(slash + 1), &ep, why)) {
    return std::nullopt;
  }
  return ep;
}

// "host[:port][,host[:port]...][/]" of an etcd URL into ep.members.
bool parse_etcd_members(std::string_view rest, Endpoint* ep, std::string* why) {
  if (!rest.empty() && rest.back() == '/') {
    rest.remove_suffix(1);
  }
  if (rest.find_first_of("/?#") != std::string_view::npos) {
    *why = "an etcd URL has no path or query (etcd://host:port[,host:port])";
    return false;
  }
  if (rest.empty()) {
    *why = "missing host";
    return false;
  }
  for (;;) {
    auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    Endpoint one;
    one.port = 2379;
    if (item.empty()) {
      *why = "empty member in the list of etcd hosts";
      return false;
    }
    if (!parse_host_part(item, &one, why)) {
      return false;
    }
    ep->members.push_back({one.host, one.port});
    if (comma == std::string_view::npos) {
      break;
    }
    rest = rest.substr(comma + 1);
  }
  ep->host = ep->members.front().host;
  ep->port = ep->members.front().port;
  return true;
}

std::optional<Endpoint> parse_etcd(std::string_view rest, bool tls,
                                   std::string* why) {
  Endpoint ep;
  ep.kind = Endpoint::Kind::etcd;
  ep.tls.enabled = tls;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    if (!parse_userinfo(rest.substr(0, at), &ep, why)) {
      return std::nullopt;
    }
    // etcd has no password-only login: a bare "secret@" is a user name.
    if (ep.user.empty() && ep.password_in_url &&
        rest.substr(0, at).find(':') == std::string_view::npos) {
      ep.user = ep.password;
      ep.password.clear();
      ep.password_in_url = false;
    }
    rest = rest.substr(at + 1);
  }
  if (!parse_etcd_members(rest, &ep, why)) {
    return std::nullopt;
  }
  return ep;
}

// A cluster's "host[:port][,host[:port]...]" into ep's seeds (and its
// host and port, the first seed's). A cluster has database 0 only.
bool parse_cluster_hosts(std::string_view rest, Endpoint* ep,
                         std::string* why) {
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/" && rest.substr(slash) != "/0") {
      *why = "a Redis Cluster has no database index (only database 0)";
      return false;
    }
    rest = rest.substr(0, slash);
  }
  for (;;) {
    auto comma = rest.find(',');
    std::string_view one = rest.substr(0, comma);
    if (one.empty()) {
      *why = "empty node in the cluster's node list";
      return false;
    }
    Endpoint node;
    if (!parse_host_part(one, &node, why)) {
      return false;
    }
    ep->cluster_seeds.push_back({node.host, node.port});
    if (comma == std::string_view::npos) {
      break;
    }
    rest = rest.substr(comma + 1);
  }
  ep->host = ep->cluster_seeds.front().host;
  ep->port = ep->cluster_seeds.front().port;
  return true;
}

}  // namespace

std::optional<Endpoint> parse_url(std::string_view url, std::string* why) {
  std::string scratch;
  if (why == nullptr) {
    why = &scratch;
  }
  auto sep = url.find("://");
  if (sep == std::string_view::npos) {
    *why =
        "missing scheme (expected redis://, rediss://, redis-sentinel://, "
        "redis-cluster://, unix://, etcd:// or etcds://)";
    return std::nullopt;
  }
  std::string_view scheme = url.substr(0, sep);
  std::string_view rest = url.substr(sep + 3);
  if (scheme == "unix") {
    return parse_unix(rest, why);
  }
  if (scheme == "redis-sentinel" || scheme == "rediss-sentinel") {
    return parse_sentinel(rest, scheme == "rediss-sentinel", why);
  }
  if (scheme == "etcd" || scheme == "etcds") {
    return parse_etcd(rest, scheme == "etcds", why);
  }
  bool cluster = scheme == "redis-cluster" || scheme == "rediss-cluster";
  if (scheme != "redis" && scheme != "rediss" && !cluster) {
    *why = fmt::format(
        "unknown scheme '{}' (expected redis://, rediss://, redis-sentinel://, "
        "redis-cluster://, unix://, etcd:// or etcds://)",
        scheme);
    return std::nullopt;
  }
  Endpoint ep;
  ep.tls.enabled = scheme == "rediss" || scheme == "rediss-cluster";
  // Userinfo ends at the last '@' so that a password may contain '@'
  // unescaped, as redis-cli allows.
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    if (!parse_userinfo(rest.substr(0, at), &ep, why)) {
      return std::nullopt;
    }
    rest = rest.substr(at + 1);
  }
  if (cluster ? !parse_cluster_hosts(rest, &ep, why)
              : !parse_host_part(rest, &ep, why)) {
    return std::nullopt;
  }
  return ep;
}

std::string Endpoint::redacted() const {
  std::string auth;
  if (!user.empty() || password_in_url) {
    auth = user;
    if (password_in_url) {
      auth += ":***";
    }
    auth += "@";
  }
  if (kind == Kind::unix_socket) {
    return db == 0 ? fmt::format("unix://{}", path)
                   : fmt::format("unix://{}?db={}", path, db);
  }
  auto bracketed = [](const std::string& h) {
    return h.find(':') != std::string::npos ? fmt::format("[{}]", h) : h;
  };
  if (kind == Kind::etcd) {
    std::string out =
        fmt::format("{}://{}", tls.enabled ? "etcds" : "etcd", auth);
    for (size_t i = 0; i < members.size(); ++i) {
      out += fmt::format("{}{}:{}", i == 0 ? "" : ",",
                         bracketed(members[i].host), members[i].port);
    }
    return out;
  }
  if (is_cluster()) {
    std::string out = fmt::format(
        "{}://{}", tls.enabled ? "rediss-cluster" : "redis-cluster", auth);
    for (size_t i = 0; i < cluster_seeds.size(); ++i) {
      out +=
          fmt::format("{}{}:{}", i == 0 ? "" : ",",
                      bracketed(cluster_seeds[i].host), cluster_seeds[i].port);
    }
    return out;
  }
  std::string out;
  if (sentinel) {
    out = fmt::format("{}://{}",
                      tls.enabled ? "rediss-sentinel" : "redis-sentinel", auth);
    for (size_t i = 0; i < sentinel->sentinels.size(); ++i) {
      const auto& a = sentinel->sentinels[i];
      out +=
          fmt::format("{}{}:{}", i == 0 ? "" : ",", bracketed(a.host), a.port);
    }
    out += "/" + sentinel->master;
  } else {
    out = fmt::format("{}://{}{}:{}", tls.enabled ? "rediss" : "redis", auth,
                      bracketed(host), port);
  }
  if (db != 0) {
    out += fmt::format("/{}", db);
  }
  return out;
}

std::optional<std::string> endpoint_problem(const Endpoint& ep) {
  if (ep.kind == Endpoint::Kind::unix_socket && ep.tls.enabled) {
    return fmt::format("TLS is not available over a unix socket ({})",
                       ep.redacted());
  }
  return std::nullopt;
}

}  // namespace godislock::config
