// SPDX-License-Identifier: MIT
#pragma once

#include "cli/options.hpp"
#include "lock/validity.hpp"

#include <string>
#include <vector>

namespace godislock::app {

// Everything `run` needs that follows from its options alone, checked
// before anything touches Redis or starts a process. A plain value.
struct RunPlan {
  std::string name;  // --name, or derived from the command
  bool name_derived = false;
  std::vector<std::string> argv;  // the command (-c: /bin/sh -c STRING)
  lock::LeaseTiming timing;
  int kill_signal = 0;
  bool single_try = false;  // --nonblock or --wait 0
};

// Builds the plan; throws cli::UsageError naming the option at fault.
// Pure: reads no environment, file or clock.
RunPlan make_plan(const cli::RunOptions& o);

// The lock name used when --name is not given: "cmd:<basename of argv[0]>:
// <16 hex digits of FNV-1a over the argv words, each ended by a NUL>".
std::string derive_name(const std::vector<std::string>& argv);

}  // namespace godislock::app
