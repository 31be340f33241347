// SPDX-License-Identifier: MIT
#pragma once

namespace godislock::app {

// The whole program: parses argv, takes the lock, runs and supervises the
// command, releases, and returns the exit code. Never throws.
int run(int argc, char** argv);

}  // namespace godislock::app
