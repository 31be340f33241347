// SPDX-License-Identifier: MIT
#pragma once

// What the subcommands of app/ share (not part of the library's interface).

#include "cli/options.hpp"
#include "config/url.hpp"
#include "util/result.hpp"

#include <chrono>
#include <string>

namespace godislock::app {

// An unrecoverable failure with its exit code; thrown on the main thread
// only, caught once in run().
struct Fatal {
  int code;
  std::string message;
};

// Sets the log level and returns where to connect, with the password from
// --password-file or the environment. Throws cli::UsageError.
config::Endpoint endpoint_for(const cli::ConnectionOptions& o);

// Throw cli::UsageError for a name or prefix godislock refuses.
void check_name(const std::string& name);
void check_prefix(const std::string& prefix);

// A duration cut to whole seconds, as "12s" (for ages and TTLs shown to
// people).
std::string whole_seconds(std::chrono::milliseconds d);

// 64 for a configuration error found by the server (e.g. SELECT), else 69.
int exit_code_for_error(const util::Error& e);

// `godislock run` (app/run.cpp).
int run_command(const cli::RunOptions& o);

// `godislock status` and `godislock release --force` (app/inspect.cpp).
int status_command(const cli::StatusOptions& o);
int release_command(const cli::ReleaseOptions& o);
// `godislock acl-rule`: prints the rule; no Redis is needed.
int acl_rule_command(const cli::AclRuleOptions& o);

}  // namespace godislock::app
