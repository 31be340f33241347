// SPDX-License-Identifier: MIT
#include "app/plan.hpp"

#include "app/common.hpp"
#include "config/duration.hpp"
#include "supervisor/supervisor.hpp"

#include <fmt/format.h>

namespace godislock::app {

namespace {

using cli::UsageError;
using lock::Millis;

// 64-bit FNV-1a: a stable, dependency-free hash for derived lock names.
uint64_t fnv1a(const std::string& data) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// The lease timing for --ttl and --kill-after, or a usage error that says
// what would fit.
lock::LeaseTiming timing_for(const cli::RunOptions& o) {
  if (o.ttl < Millis(3)) {
    throw UsageError{fmt::format("--ttl {} is below the minimum of 3ms",
                                 config::format_duration(o.ttl))};
  }
  lock::LeaseTiming timing;
  Millis kill_after = o.kill_after.value_or(lock::default_kill_after(o.ttl));
  if (lock::make_timing(o.ttl, kill_after, &timing)) {
    return timing;
  }
  if (!o.kill_after) {
    Millis min_ttl(3);
    while (!lock::make_timing(min_ttl, lock::default_kill_after(min_ttl),
                              &timing)) {
      min_ttl += Millis(1);
    }
    throw UsageError{fmt::format(
        "--ttl {} is too short to stop the command before the lease expires "
        "(use --ttl {} or more)",
        config::format_duration(o.ttl), config::format_duration(min_ttl))};
  }
  auto max_fit = lock::max_kill_after(o.ttl);
  throw UsageError{fmt::format(
      "--kill-after {} does not fit in --ttl {}: the command could not be "
      "stopped before the lease expires ({}use --ttl {} or more)",
      config::format_duration(kill_after), config::format_duration(o.ttl),
      max_fit.count() >= 0 ? fmt::format("use --kill-after {} or less, or ",
                                         config::format_duration(max_fit))
                           : std::string(),
      config::format_duration(lock::min_ttl_for(kill_after)))};
}

}  // namespace

std::string derive_name(const std::vector<std::string>& argv) {
  std::string joined;
  for (const auto& a : argv) {
    joined += a;
    joined.push_back('\0');
  }
  std::string base = argv.empty() ? "" : argv[0];
  if (auto slash = base.rfind('/'); slash != std::string::npos) {
    base = base.substr(slash + 1);
  }
  std::string clean;
  for (char c : base) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    clean.push_back(ok ? c : '_');
    if (clean.size() == 64) {
      break;
    }
  }
  return fmt::format("cmd:{}:{:016x}", clean, fnv1a(joined));
}

RunPlan make_plan(const cli::RunOptions& o) {
  RunPlan plan;
  plan.argv = o.command;
  if (o.shell_command) {
    plan.argv = {"/bin/sh", "-c", *o.shell_command};
  }
  if (o.name) {
    plan.name = *o.name;
  } else {
    // For -c: over "sh", "-c", the string, whatever sh's path.
    plan.name_derived = true;
    plan.name = derive_name(
        o.shell_command ? std::vector<std::string>{"sh", "-c", *o.shell_command}
                        : plan.argv);
  }
  check_name(plan.name);
  check_prefix(o.prefix);
  plan.timing = timing_for(o);
  plan.kill_signal = supervisor::parse_signal(o.kill_signal);
  if (plan.kill_signal == 0) {
    throw UsageError{fmt::format(
        "invalid value '{}' for --kill-signal: unknown signal", o.kill_signal)};
  }
  plan.single_try = o.nonblock || (o.wait && o.wait->count() == 0);
  return plan;
}

}  // namespace godislock::app
