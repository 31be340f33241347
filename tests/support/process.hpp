// SPDX-License-Identifier: MIT
// What the test harnesses share to start their servers.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace godislock::test {

// A loopback port the kernel just handed out: free unless someone takes it
// before the server binds it (the harnesses retry with another then).
int free_loopback_port();

// Starts `args` (args[0] looked up in PATH) in a child process: its PID, or
// -1 when fork fails. A child that cannot exec exits 127.
pid_t spawn(const std::vector<std::string>& args);

}  // namespace godislock::test
