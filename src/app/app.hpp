// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <vector>

namespace godislock::app {

// The lock name used when --name is not given: "cmd:<basename of argv[0]>:
// <16 hex digits of FNV-1a over the argv words, each ended by a NUL>".
std::string derive_name(const std::vector<std::string>& argv);

// The whole program: parses argv, takes the lock, runs and supervises the
// command, releases, and returns the exit code. Never throws.
int run(int argc, char** argv);

}  // namespace godislock::app
