// SPDX-License-Identifier: MIT
#pragma once

#include "util/deadline.hpp"
#include "util/result.hpp"

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace godislock::net {

// --- Interface ---

// One socket address (IPv4, IPv6 or a unix socket path), copied out of
// getaddrinfo(3)'s list so that it can be kept and connected to again
// without another lookup. A plain value type.
struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* get() const {
    return reinterpret_cast<const sockaddr*>(&storage);
  }
  int family() const { return storage.ss_family; }
  // "192.0.2.1:6379", "[2001:db8::1]:6379" or the socket's path; for
  // messages.
  std::string to_string() const;
};

// The address of a numeric IPv4 or IPv6 literal ("127.0.0.1", "::1",
// without brackets), or nullopt when `host` is not one. No resolver is
// involved.
std::optional<Address> parse_ip_literal(const std::string& host, uint16_t port);

// The addresses of `host` for a TCP connection to `port`, in the order the
// resolver prefers. An IP literal comes back as it is, without a lookup. A
// name is looked up as nsswitch.conf(5) says (hosts file, DNS), and the call
// returns by `deadline` whatever the lookup is doing; call it once and keep
// the addresses, since a later lookup may not answer in time.
// Errors: timeout ("cannot resolve host 'H' within 2s (DNS did not
// answer)"), io ("cannot resolve host 'H': " and the resolver's text, e.g.
// for a name that does not exist).
util::Result<std::vector<Address>> resolve(const std::string& host,
                                           uint16_t port,
                                           util::Deadline deadline);

// The address of the unix socket at `path`.
// Errors: io (the path does not fit in a sockaddr_un).
util::Result<Address> unix_address(const std::string& path);

}  // namespace godislock::net
