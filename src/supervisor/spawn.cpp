// SPDX-License-Identifier: MIT
// Starting the command: PATH search as execvp(3) does, vfork and exec with
// the signal state godislock was started with. Linux-only (prctl).
#include "supervisor/supervisor.hpp"

#include "signals/signals.hpp"
#include "util/fd.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

namespace godislock::supervisor {

using util::Error;
using util::ErrorKind;

namespace {

// The terminal godislock is in the foreground of, if any: the first of
// fds 0-2 that is a tty whose foreground group is ours. Not inlined: its
// locals must not share registers with spawn()'s around vfork.
[[gnu::noinline]] int foreground_tty() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::isatty(fd) == 1 && ::tcgetpgrp(fd) == ::getpgrp()) {
      return fd;
    }
  }
  return -1;
}

}  // namespace

util::Status become_subreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    return Error{ErrorKind::io,
                 fmt::format("cannot become the reaper of the command's "
                             "descendants: prctl: {}",
                             std::strerror(errno))};
  }
  return util::ok_status();
}

Resolved resolve_command(const std::string& file) {
  auto check = [](const std::string& path) -> int {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      return errno == EACCES ? EACCES : ENOENT;
    }
    if (S_ISDIR(st.st_mode) || ::access(path.c_str(), X_OK) != 0) {
      return EACCES;
    }
    return 0;
  };
  if (file.empty()) {
    return {file, ENOENT};
  }
  if (file.find('/') != std::string::npos) {
    return {file, check(file)};
  }
  const char* env_path = std::getenv("PATH");
  std::string path_list =
      env_path != nullptr ? env_path : "/usr/local/bin:/bin:/usr/bin";
  int best = ENOENT;
  std::string dir;
  // An empty PATH element means the current directory (execvp(3)).
  size_t start = 0;
  for (;;) {
    size_t colon = path_list.find(':', start);
    dir = path_list.substr(
        start, colon == std::string::npos ? std::string::npos : colon - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + file;
    int e = check(candidate);
    if (e == 0) {
      return {candidate, 0};
    }
    if (e == EACCES) {
      best = EACCES;
    }
    if (colon == std::string::npos) {
      break;
    }
    start = colon + 1;
  }
  return {file, best};
}

int exec_failure_code(int err) { return err == ENOENT ? 127 : 126; }

namespace {

// What the child needs between vfork and exec, prepared beforehand: only
// async-signal-safe system calls may run there, on no memory of its own.
struct ChildPlan {
  const char* path;
  char* const* argv;
  char* const* envp;
  char* const* shargv;  // /bin/sh PATH ARGS... for a file without #!
  int tty;              // terminal to hand over, or -1
  int status_fd;        // close-on-exec pipe: gets errno if exec fails
  pid_t parent;
};

[[noreturn]] void run_child(const ChildPlan* plan) {
  // Own process group, so that the whole tree can be signalled.
  ::setpgid(0, 0);
  if (plan->tty >= 0) {
    // Allowed although we are not yet in the foreground: SIGTTOU is still
    // blocked here. Done in both processes (as shells do) so that the
    // child never reads the tty before it is in the foreground.
    ::tcsetpgrp(plan->tty, ::getpid());
  }
  // Never outlive godislock: its death means nobody refreshes the lease.
  // The parent may have died before prctl: then getppid() has changed.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != plan->parent) {
    ::_exit(127);
  }
  // Ignored signals stay ignored across exec: restore SIGPIPE, then the
  // mask (signals blocked at our startup went to the signalfd, never
  // changing dispositions).
  ::sigaction(SIGPIPE, &signals::original_sigpipe(), nullptr);
  ::sigprocmask(SIG_SETMASK, &signals::original_mask(), nullptr);
  // What was closed when we started is closed for the command too.
  for (int fd = 0; fd <= 2; ++fd) {
    if (signals::was_closed_at_start(fd)) {
      ::close(fd);
    }
  }
  ::execve(plan->path, plan->argv, plan->envp);
  if (errno == ENOEXEC) {
    ::execve(plan->shargv[0], plan->shargv, plan->envp);
  }
  // errno is shared with the parent's thread (vfork): it is the exec's,
  // which is what the parent reads from the pipe anyway.
  ssize_t ignored = ::write(plan->status_fd, &errno, sizeof errno);
  (void)ignored;
  ::_exit(127);
}

}  // namespace

util::Result<Spawned> spawn(const std::string& path,
                            const std::vector<std::string>& argv,
                            const std::vector<std::string>& env,
                            int* exec_errno) {
  *exec_errno = 0;
  // Everything the child needs is built before vfork: between vfork and
  // exec only async-signal-safe calls are allowed (no allocation).
  std::vector<char*> cargv;
  for (const auto& a : argv) {
    cargv.push_back(const_cast<char*>(a.c_str()));
  }
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (const auto& e : env) {
    cenv.push_back(const_cast<char*>(e.c_str()));
  }
  cenv.push_back(nullptr);
  // execvp(3) runs a file without a #! line through /bin/sh (ENOEXEC).
  static char sh[] = "/bin/sh";
  std::vector<char*> shargv{sh, const_cast<char*>(path.c_str())};
  shargv.insert(shargv.end(), cargv.begin() + 1, cargv.end());

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    return Error{ErrorKind::io,
                 std::string("cannot create a pipe: ") + std::strerror(errno)};
  }
  util::Fd rd(pipefd[0]);
  util::Fd wr(pipefd[1]);
  ChildPlan plan{path.c_str(),     cargv.data(), cenv.data(), shargv.data(),
                 foreground_tty(), pipefd[1],    ::getpid()};
  const int tty = plan.tty;

  // vfork: the child borrows our memory until it execs, so no page tables
  // are copied (fork of even a small process costs ~0.3 ms on the handoff
  // path). Safe here: we are single-threaded, and the child only makes
  // system calls on the plan prepared above, then execs or _exits.
  pid_t pid = ::vfork();
  if (pid == 0) {
    run_child(&plan);
  }
  if (pid < 0) {
    return Error{ErrorKind::io,
                 std::string("cannot fork: ") + std::strerror(errno)};
  }
  // The parent resumes once the child has exec'd (or failed to): it is in
  // its own group already.
  Spawned s;
  s.pid = pid;
  if (tty >= 0 && ::tcsetpgrp(tty, pid) == 0) {
    s.owns_terminal = true;
    s.terminal_fd = tty;
  }
  wr.reset();
  int err = 0;
  ssize_t n;
  do {
    n = ::read(rd.get(), &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof err)) {
    int st;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (s.owns_terminal) {
      ::tcsetpgrp(tty, ::getpgrp());
    }
    *exec_errno = err;
    return Error{ErrorKind::io, std::strerror(err)};
  }
  return s;
}

}  // namespace godislock::supervisor
