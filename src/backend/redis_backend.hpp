// SPDX-License-Identifier: MIT
#pragma once

#include "backend/backend.hpp"
#include "redis/connection.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace godislock::backend {

// Key layout of one lock. All keys carry the hash tag {NAME} so that they
// share a Redis Cluster slot.
struct RedisKeys {
  std::string lock;     // PREFIX{NAME}
  std::string fence;    // PREFIX{NAME}:fence
  std::string channel;  // PREFIX{NAME}:released
  std::string queue;    // PREFIX{NAME}:queue
};

// A queued waiter's wake-up channel: PREFIX{NAME}:wake:TOKEN.
std::string redis_wake_channel(const RedisKeys& keys, const std::string& token);
RedisKeys redis_keys(const std::string& prefix, const std::string& name);

// Shared with the cluster backend (cluster_backend.cpp):
// The lock name in one of its keys (PREFIX{NAME} or PREFIX{NAME}:SUFFIX),
// or nullopt for a key that is not one of ours.
std::optional<std::string> name_of_key(const std::string& prefix,
                                       const std::string& key);
// Adds to `names` the names of the locks with keys under `prefix` on the
// server of `conn`: SCAN with MATCH, never KEYS (SCAN ignores ACL key
// patterns, so the pattern is what keeps it to the prefix). `where` names
// the node in errors ("" for the only one).
util::Status scan_lock_names(redis::Connection& conn, const std::string& prefix,
                             const std::string& where,
                             std::set<std::string>& names,
                             util::Deadline deadline);
// The ErrorKind of a server error's text (auth, busy or server).
util::ErrorKind classify_server_error(const std::string& text);
// A server error reply as an Error for `what` (a command or script), a
// NOPERM told with the permission the ACL user lacks.
util::Error server_error(const std::string& what, const std::string& text);
// A hand-over message, "granted SEQ FENCE" (release.lua): the fence when
// SEQ is `latest_seq`, nullopt for any other payload.
std::optional<uint64_t> parse_grant(std::string_view payload,
                                    uint64_t latest_seq);

util::Result<std::unique_ptr<Backend>> open_redis(const Settings& settings,
                                                  util::Deadline deadline);

}  // namespace godislock::backend
