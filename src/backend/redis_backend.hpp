// SPDX-License-Identifier: MIT
#pragma once

#include "backend/backend.hpp"

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

util::Result<std::unique_ptr<Backend>> open_redis(const Settings& settings,
                                                  util::Deadline deadline);

}  // namespace godislock::backend
