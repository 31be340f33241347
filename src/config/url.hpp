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

// Where the Redis server is and how to log in. A plain value type.
struct Endpoint {
  enum class Kind { tcp, unix_socket };
  Kind kind = Kind::tcp;
  std::string host = "127.0.0.1";  // tcp: name or address, no brackets
  uint16_t port = 6379;            // tcp
  std::string path;                // unix_socket
  long db = 0;
  std::string user;      // empty: default user
  std::string password;  // empty: no AUTH
  bool password_in_url = false;
  TlsSettings tls;  // rediss:// turns it on
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
// "unix:///path/to.sock[?db=N]", and a Redis Cluster's seed nodes as
// "redis-cluster://[user[:password]@]host[:port][,host[:port]...]" (or
// "rediss-cluster://", TLS on; no database index). Returns nullopt and sets
// *why (which never contains the password) on any malformed part.
std::optional<Endpoint> parse_url(std::string_view url, std::string* why);

// Why `ep` cannot be used as it is configured (TLS asked for a unix socket),
// or nullopt. The text names the endpoint; a caller reports it as a
// configuration error.
std::optional<std::string> endpoint_problem(const Endpoint& ep);

}  // namespace godislock::config
