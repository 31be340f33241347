// SPDX-License-Identifier: MIT
#pragma once

namespace godislock::app {

// Exit codes are part of the API (man page, EXIT STATUS). Do not change.
// Besides these, godislock exits with the child's own code, or 128+N when
// the child (or godislock, before it started one) died of signal N.
enum ExitCode : int {
  k_exit_usage = 64,         // EX_USAGE: command line or configuration
  k_exit_foreign_key = 65,   // EX_DATAERR: lock key not ours to manage
  k_exit_unavailable = 69,   // EX_UNAVAILABLE: Redis unreachable or auth
  k_exit_internal = 70,      // EX_SOFTWARE
  k_exit_not_acquired = 75,  // EX_TEMPFAIL; -E/--conflict-exit-code
  k_exit_lock_lost = 79,     // the lease was lost while the child ran
  k_exit_not_executable = 126,
  k_exit_not_found = 127,
};

}  // namespace godislock::app
