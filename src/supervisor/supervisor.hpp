// SPDX-License-Identifier: MIT
#pragma once

#include "lock/validity.hpp"
#include "util/deadline.hpp"
#include "util/result.hpp"

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <string>
#include <vector>

namespace godislock::supervisor {

// --- Child processes ---

// Makes this process the reaper of its orphaned descendants
// (PR_SET_CHILD_SUBREAPER), so that a lock loss still reaches a command's
// background processes and --wait-tree can wait for them.
util::Status become_subreaper();

// Finds `file` the way execvp(3) does (PATH search when it has no '/').
// Returns the path to execute, or an error whose message is the strerror of
// ENOENT (127: not found) or EACCES (126: not executable).
struct Resolved {
  std::string path;
  int error = 0;  // 0, ENOENT or EACCES
};
Resolved resolve_command(const std::string& file);

// Exit code for an exec failure errno: 127 when not found, else 126.
int exec_failure_code(int err);

struct Spawned {
  pid_t pid = -1;
  bool owns_terminal = false;  // the tty was handed to the child's group
  int terminal_fd = -1;
};

// Forks and execs `argv` (argv[0] resolved to `path`) with exactly `env`,
// in a new process group that is also made the terminal's foreground group
// when godislock itself is in the foreground. Before exec the child sets
// PR_SET_PDEATHSIG=SIGKILL (and exits if its parent is already gone),
// restores the original signal mask and dispositions, and keeps no fd of
// ours (all are close-on-exec). Fails with the exec errno in `*exec_errno`
// when exec itself failed (the child is reaped), or with an io error when
// fork or pipe failed.
util::Result<Spawned> spawn(const std::string& path,
                            const std::vector<std::string>& argv,
                            const std::vector<std::string>& env,
                            int* exec_errno);

struct Outcome {
  int wait_status = 0;  // as from waitpid(2)
  // The lease was given up while the command ran: the refresher reported a
  // loss, or its give-up point passed without a successful refresh.
  bool lost = false;
  // Given up by the supervisor's own deadline, the refresher silent.
  bool lost_by_deadline = false;
  // Supervision itself failed (poll or waitpid): the tree was killed and
  // the command's status is unknown. `failure` says why.
  bool failed = false;
  std::string failure;
  int forwarded = 0;  // last signal forwarded to the child (0: none)
  util::Clock::time_point exited_at{};  // when its exit was seen
  util::Clock::time_point lost_signalled_at{};
  // After a loss: when SIGKILL went to the tree (or the tree was found
  // gone), and the end of the provable lease then; the difference is the
  // margin by which the command was stopped in time.
  util::Clock::time_point killed_at{};
  util::Clock::time_point lease_end{};
};

// Work the caller wants done on the supervising thread at a given time
// while the child runs (app: start the refresher thread only once a refresh
// draws near, so that a short command never pays for a thread).
struct Alarm {
  util::Clock::time_point at{};
  std::function<void()> fire;  // empty: no alarm
};

struct Policy {
  // Readable when the refresher gave the lease up (-1: none).
  int wake_fd = -1;
  int kill_signal = SIGTERM;
  std::chrono::milliseconds kill_after{5000};
  // The lease, enforced on its own whether or not the refresher reports:
  // `kill_signal` at its give-up point, SIGKILL `kill_after` later, which
  // lands before the lease can end. Null: no lease (tests).
  const lock::LeaseClock* lease = nullptr;
  // Hold on until every descendant has exited, not only the child.
  bool wait_tree = false;
  Alarm alarm;
};

// Waits for the child to exit, forwarding INT, TERM, HUP, QUIT, USR1 and
// USR2 to its process group, and handing job-control stops on. On a loss
// (`wake_fd` readable, or the lease's give-up point passed) the child's
// whole tree gets `kill_signal`, then SIGKILL `kill_after` after the earlier
// of the loss and the give-up point; the call returns only once the child
// has exited and, after a loss or with `wait_tree`, no descendant is left.
// `wake_fd` is made non-blocking (it is drained). `alarm.fire` runs once,
// on this thread, as soon as `alarm.at` has passed, unless the child exited
// first. If poll or waitpid fail, the tree is killed and `failed` set.
Outcome supervise(const Spawned& child, Policy policy);

// The exit code that passes a wait status on: the child's code, or 128+N
// when it died of signal N.
int exit_code_for(int wait_status);

// Parses a signal name or number ("TERM", "SIGTERM", "15"); 0 if unknown.
int parse_signal(const std::string& text);

}  // namespace godislock::supervisor
