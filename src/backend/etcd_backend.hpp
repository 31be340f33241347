// SPDX-License-Identifier: MIT
#pragma once

#include "backend/backend.hpp"

#include <string>

namespace godislock::backend {

// --- Interface ---

// Where lock NAME lives in etcd: every hold and waiter is one key
// PREFIX + NAME + "/" + its lease ID in hex, with '%' and '/' in NAME
// written as %25 and %2F so that no lock's keys fall under another's.
std::string etcd_lock_prefix(const std::string& prefix,
                             const std::string& name);

// The lock recipe of etcd's clientv3/concurrency.Mutex on the v3 JSON
// gateway (see etcd_backend.cpp). Fails with ErrorKind::config for what it
// cannot do (--limit, --shared) and ErrorKind::io when libcurl cannot be
// loaded. Reads the lock's keys once within `deadline` (errors as
// etcd::Client's), so that a cluster that cannot be used fails here.
util::Result<std::unique_ptr<Backend>> open_etcd(const Settings& settings,
                                                 util::Deadline deadline);

}  // namespace godislock::backend
