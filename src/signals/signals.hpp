// SPDX-License-Identifier: MIT
#pragma once

#include "util/result.hpp"

#include <csignal>

// The process's signal handling, owned here for every phase of a run: the
// wait for the lock and the supervision of the command read the same
// signalfd. Linux-only (signalfd).
namespace godislock::signals {

// Blocks the signals godislock handles (INT, TERM, HUP, QUIT, USR1, USR2,
// CHLD, TTIN, TTOU, CONT) and opens a signalfd for them; ignores SIGPIPE.
// Saves the original mask and dispositions for the command. Opens
// /dev/null on any of fds 0-2 that is closed, so that our own files
// (signalfd, sockets) never take those numbers (stderr messages would go
// into a Redis connection). Call first in main, while the process has a
// single thread, so every thread inherits the mask and no signal is
// delivered the default way.
util::Status init();

// The signalfd (close-on-exec, non-blocking): readable while a handled
// signal is pending.
int fd();

// Takes one pending signal from the signalfd without blocking; 0 if none.
int take();

// Whether fd 0, 1 or 2 was closed when godislock started (the command gets
// it closed again).
bool was_closed_at_start(int fd);

// The signal mask and SIGPIPE disposition godislock was started with, for
// the command (read between vfork and exec: no allocation).
const sigset_t& original_mask();
const struct sigaction& original_sigpipe();

}  // namespace godislock::signals
