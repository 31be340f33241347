// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace godislock::config {

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

  // The URL with any password shown as "***"; safe to print.
  std::string redacted() const;
};

constexpr long k_max_db = 1000000;  // Redis accepts any int; larger is a typo

// Parses "redis://[user[:password]@]host[:port][/db]" (IPv6 hosts in
// brackets) and "unix:///path/to.sock[?db=N]". Returns nullopt and sets *why
// (which never contains the password) on any malformed part.
std::optional<Endpoint> parse_url(std::string_view url, std::string* why);

}  // namespace godislock::config
