// SPDX-License-Identifier: MIT
#pragma once

#include "backend/backend.hpp"

#include <optional>
#include <string>

namespace godislock::backend {

// The Redis backend on a Redis Cluster (redis-cluster:// and
// rediss-cluster://): the same scripts, each sent to the master of the
// lock's slot (every key of a lock carries the hash tag {NAME}, so one
// slot holds them all) through redis::Cluster, which follows the cluster's
// redirections; waiters listen on shard channels (SSUBSCRIBE), which the
// scripts SPUBLISH to. The slot map is learnt here from the seed nodes,
// within `deadline`. Errors as redis::Cluster::discover.
util::Result<std::unique_ptr<Backend>> open_cluster(const Settings& settings,
                                                    util::Deadline deadline);

// Why the keys of lock `name` under `prefix` would not share one cluster
// slot, or nullopt. Every key is PREFIX{NAME} or starts with it, so they
// share the hash tag Redis finds in it (from its first '{' to the next
// '}'), unless that tag is empty ("{}" in the prefix, or a name that
// starts with '}'): then Redis hashes each whole key, and the scripts
// would fail with CROSSSLOT.
std::optional<std::string> cluster_name_problem(const std::string& prefix,
                                                const std::string& name);

}  // namespace godislock::backend
