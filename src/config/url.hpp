// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace godislock::config {

// How to speak TLS to a TCP endpoint (redis-cli's --tls, --cacert,
// --cacertdir, --cert, --key, --sni, --insecure). A plain value type.
struct TlsSettings {
  bool enabled = false;
  std::string ca_file;    // empty (and no ca_dir): the system's trust store
  std::string ca_dir;     // a c_rehash(1)ed directory of CA certificates
  std::string cert_file;  // client certificate chain (PEM)
  std::string key_file;   // its private key (PEM, not encrypted)
  std::string sni;        // empty: the host name; else sent and checked
  bool insecure = false;  // skip certificate and host name verification
};

// A master found through Redis Sentinel (redis-sentinel://): the sentinels
// to ask, the name they know the master by, and how to log in to them
// (--sentinel-user, --sentinel-password-file; none by default, as Sentinel
// runs without a password unless configured with one). A plain value type.
struct SentinelSettings {
  struct Address {
    std::string host;  // name or address, no brackets
    uint16_t port = 26379;
  };
  std::vector<Address> sentinels;  // in the URL's order; at least one
  std::string master;              // the name in "sentinel monitor NAME ..."
  std::string user;                // empty: default user
  std::string password;            // empty: no AUTH
};

// Where the Redis server is and how to log in. A plain value type.
struct Endpoint {
  enum class Kind { tcp, unix_socket, etcd };
  Kind kind = Kind::tcp;
  std::string host = "127.0.0.1";  // tcp: name or address, no brackets
  uint16_t port = 6379;            // tcp
  std::string path;                // unix_socket
  long db = 0;
  std::string user;      // empty: default user
  std::string password;  // empty: no AUTH
  bool password_in_url = false;
  TlsSettings tls;  // rediss:// turns it on
  // redis-sentinel://: the master is found through these sentinels (host
  // and port above are unused; user, password, db and TLS are the
  // master's, and TLS applies to the sentinels as well).
  std::optional<SentinelSettings> sentinel;
  // etcd: every member given, in order (host and port above are the first).
  struct Member {
    std::string host;
    uint16_t port = 2379;
  };
  std::vector<Member> members;
  // redis-cluster://: the seed nodes the cluster's map is first asked
  // from (the first is also host and port). Empty: not a cluster.
  struct Seed {
    std::string host;
    uint16_t port = 6379;
  };
  std::vector<Seed> cluster_seeds;
  bool is_cluster() const { return !cluster_seeds.empty(); }

  // The URL with any password shown as "***"; safe to print. rediss://
  // when TLS is on.
  std::string redacted() const;
};

constexpr long k_max_db = 1000000;  // Redis accepts any int; larger is a typo

// Parses "redis://[user[:password]@]host[:port][/db]" (IPv6 hosts in
// brackets), the same with "rediss://" (TLS on) and
// "unix:///path/to.sock[?db=N]",
// "redis-sentinel://[user[:password]@]host[:port][,host[:port]...]/MASTER[/db]"
// (sentinel port 26379 by default; "rediss-sentinel://" speaks TLS to the
// sentinels and the master; '@' or '/' in MASTER percent-encoded),
// "redis-cluster://[user[:password]@]host[:port][,host[:port]...]" (a Redis
// Cluster's seed nodes; "rediss-cluster://", TLS on; no database index) and
// "etcd://[user[:password]@]host[:port][,host[:port]...]" (port 2379 by
// default; a trailing '/' allowed). Returns nullopt and sets *why (which never
// contains the password) on any malformed part.
std::optional<Endpoint> parse_url(std::string_view url, std::string* why);

// Why `ep` cannot be used as it is configured (TLS asked for a unix socket),
// or nullopt. The text names the endpoint; a caller reports it as a
// configuration error.
std::optional<std::string> endpoint_problem(const Endpoint& ep);

}  // namespace godislock::config
