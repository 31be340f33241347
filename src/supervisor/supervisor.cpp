// SPDX-License-Identifier: MIT
// Linux-only process handling: signalfd, prctl and /proc live here only.
#include "supervisor/supervisor.hpp"

#include "util/fd.hpp"
#include "util/log.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <set>

namespace godislock::supervisor {

using util::Clock;
using util::Error;
using util::ErrorKind;

namespace {

// Signal state saved at startup; written once before any thread exists.
sigset_t g_original_mask;
struct sigaction g_original_sigpipe;
util::Fd g_signal_fd;
bool g_closed_std[3] = {false, false, false};

const int k_handled[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT, SIGUSR1,
                         SIGUSR2, SIGCHLD, SIGTTIN, SIGTTOU, SIGCONT};
const int k_forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1,
                           SIGUSR2};

bool is_forwarded(int sig) {
  for (int s : k_forwarded) {
    if (s == sig) {
      return true;
    }
  }
  return false;
}

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

// All live descendants of this process, read from
// /proc/PID/task/TID/children (children reparented to us as subreaper
// included).
std::set<pid_t> descendants() {
  std::set<pid_t> out;
  std::vector<pid_t> todo{::getpid()};
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    // Each thread has its own children file.
    std::string task_dir = "/proc/" + std::to_string(p) + "/task";
    DIR* d = ::opendir(task_dir.c_str());
    if (d == nullptr) {
      continue;
    }
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') {
        continue;
      }
      std::ifstream f(task_dir + "/" + e->d_name + "/children");
      pid_t c;
      while (f >> c) {
        if (out.insert(c).second) {
          todo.push_back(c);
        }
      }
    }
    ::closedir(d);
  }
  return out;
}

// Signals the child's process group and every descendant (some may have
// left the group with setsid or setpgid).
void signal_tree(pid_t pgid, int sig) {
  ::kill(-pgid, sig);
  for (pid_t p : descendants()) {
    ::kill(p, sig);
  }
}

bool tree_alive(pid_t pgid) {
  if (::kill(-pgid, 0) == 0) {
    return true;
  }
  return !descendants().empty();
}

// Reaps whatever has exited; returns true and the status when `child` has
// exited or been stopped (stopped: *stopped = true).
bool reap(pid_t child, int* status, bool* stopped) {
  bool found = false;
  for (;;) {
    int st = 0;
    pid_t p = ::waitpid(-1, &st, WNOHANG | WUNTRACED);
    if (p < 0 && errno == EINTR) {
      continue;
    }
    if (p <= 0) {
      return found;
    }
    if (p == child) {
      *status = st;
      *stopped = WIFSTOPPED(st);
      found = true;
    }
    // Other pids: orphaned descendants reparented to us (subreaper).
  }
}

}  // namespace

bool was_closed_at_start(int fd) {
  return fd >= 0 && fd <= 2 && g_closed_std[fd];
}

util::Status init_signals() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      int null = ::open("/dev/null", (fd == 0 ? O_RDONLY : O_WRONLY));
      if (null >= 0 && null != fd) {
        ::dup2(null, fd);
        ::close(null);
      }
      g_closed_std[fd] = true;
    }
  }
  sigset_t block;
  sigemptyset(&block);
  for (int s : k_handled) {
    sigaddset(&block, s);
  }
  if (::sigprocmask(SIG_BLOCK, &block, &g_original_mask) != 0) {
    return Error{ErrorKind::io, std::string("sigprocmask: ") +
                                    std::strerror(errno)};
  }
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  ::sigaction(SIGPIPE, &ign, &g_original_sigpipe);
  int fd = ::signalfd(-1, &block, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) {
    return Error{ErrorKind::io, std::string("signalfd: ") +
                                    std::strerror(errno)};
  }
  g_signal_fd.reset(fd);
  return util::ok_status();
}

int signal_fd() { return g_signal_fd.get(); }

int take_signal() {
  signalfd_siginfo si;
  for (;;) {
    ssize_t n = ::read(g_signal_fd.get(), &si, sizeof si);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n != static_cast<ssize_t>(sizeof si)) {
      return 0;
    }
    return static_cast<int>(si.ssi_signo);
  }
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
    dir = path_list.substr(start, colon == std::string::npos
                                      ? std::string::npos
                                      : colon - start);
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
  ::sigaction(SIGPIPE, &g_original_sigpipe, nullptr);
  ::sigprocmask(SIG_SETMASK, &g_original_mask, nullptr);
  // What was closed when we started is closed for the command too.
  for (int fd = 0; fd <= 2; ++fd) {
    if (g_closed_std[fd]) {
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
  // Everything the child needs is built before fork: between fork and exec
  // only async-signal-safe calls are allowed (no allocation).
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
    return Error{ErrorKind::io, std::string("cannot create a pipe: ") +
                                    std::strerror(errno)};
  }
  util::Fd rd(pipefd[0]);
  util::Fd wr(pipefd[1]);
  ChildPlan plan{path.c_str(), cargv.data(), cenv.data(), shargv.data(),
                 foreground_tty(), pipefd[1], ::getpid()};
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
  // Parent: set the group here too, closing the race with our own
  // signal_tree() before the child ran setpgid.
  ::setpgid(pid, pid);
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

Outcome supervise(const Spawned& child, int wake_fd, int kill_signal,
                  std::chrono::milliseconds kill_after, Alarm alarm) {
  Outcome out;
  ::fcntl(wake_fd, F_SETFL, ::fcntl(wake_fd, F_GETFL) | O_NONBLOCK);
  bool exited = false;
  bool kill_sent = false;
  Clock::time_point kill_at{};
  auto take_terminal_back = [&] {
    if (child.owns_terminal) {
      // SIGTTOU is blocked, so a background process may do this.
      ::tcsetpgrp(child.terminal_fd, ::getpgrp());
    }
  };
  for (;;) {
    if (exited && (!out.lost || !tree_alive(child.pid))) {
      break;
    }
    int timeout_ms = -1;
    if (out.lost && !kill_sent) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(
          kill_at - Clock::now());
      timeout_ms = static_cast<int>(std::max<long long>(left.count(), 0));
    } else if (exited) {
      // Lost, child gone, SIGKILL sent: wait for the rest of the tree to go.
      // SIGKILL again each round: a grandchild being reparented to us when
      // the tree was walked (its parent just died) was in no children list.
      timeout_ms = 10;
      int st;
      bool stopped;
      reap(child.pid, &st, &stopped);
      signal_tree(child.pid, SIGKILL);
    }
    if (alarm.fire && !exited) {
      auto now = Clock::now();
      if (now >= alarm.at) {
        auto fire = std::move(alarm.fire);
        alarm.fire = nullptr;
        fire();
      } else {
        // Rounded up: waking early would only spin until the alarm is due.
        auto left =
            std::chrono::ceil<std::chrono::milliseconds>(alarm.at - now);
        int left_ms = static_cast<int>(
            std::min<long long>(left.count(), 24LL * 3600 * 1000));
        timeout_ms = timeout_ms < 0 ? left_ms : std::min(timeout_ms, left_ms);
      }
    }
    pollfd p[2] = {{signal_fd(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
    int n = ::poll(p, 2, timeout_ms);
    if (n < 0 && errno != EINTR) {
      GODISLOCK_ERROR("poll: {}", std::strerror(errno));
      break;
    }
    if (n > 0 && (p[1].revents & POLLIN) != 0) {
      char buf[16];
      while (::read(wake_fd, buf, sizeof buf) > 0) {
      }
      if (!out.lost) {
        out.lost = true;
        out.lost_signalled_at = Clock::now();
        kill_at = out.lost_signalled_at + kill_after;
        GODISLOCK_DEBUG("sending signal {} to the child's process tree",
                        kill_signal);
        signal_tree(child.pid, kill_signal);
      }
    }
    if (n > 0 && (p[0].revents & POLLIN) != 0) {
      while (int sig = take_signal()) {
        if (sig == SIGCHLD) {
          int st = 0;
          bool stopped = false;
          if (reap(child.pid, &st, &stopped)) {
            if (stopped && child.owns_terminal) {
              // Job control: the child was stopped at the terminal (Ctrl-Z);
              // stop ourselves too so the shell sees the job stop, and pass
              // SIGCONT on. Without a terminal a stop comes from outside
              // (kill -STOP): we keep refreshing, the lock stays held.
              take_terminal_back();
              ::kill(::getpid(), SIGSTOP);
              if (child.owns_terminal) {
                ::tcsetpgrp(child.terminal_fd, child.pid);
              }
              ::kill(-child.pid, SIGCONT);
            } else if (!stopped) {
              out.wait_status = st;
              out.exited_at = Clock::now();
              exited = true;
            }
          }
        } else if (is_forwarded(sig)) {
          GODISLOCK_DEBUG("forwarding signal {} to the child", sig);
          out.forwarded = sig;
          ::kill(-child.pid, sig);
        }
      }
    }
    if (out.lost && !kill_sent && Clock::now() >= kill_at) {
      kill_sent = true;
      signal_tree(child.pid, SIGKILL);
    }
    if (exited && out.lost && !kill_sent) {
      // The child is gone; the rest of its tree gets no more grace than
      // the lease allows.
      kill_sent = true;
      signal_tree(child.pid, SIGKILL);
    }
  }
  take_terminal_back();
  return out;
}

int exit_code_for(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return WEXITSTATUS(wait_status);
  }
  if (WIFSIGNALED(wait_status)) {
    return 128 + WTERMSIG(wait_status);
  }
  return 70;
}

int parse_signal(const std::string& text) {
  static const std::pair<const char*, int> k_names[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},
      {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
      {"TERM", SIGTERM}, {"ALRM", SIGALRM}, {"PIPE", SIGPIPE},
  };
  std::string t = text;
  if (t.rfind("SIG", 0) == 0) {
    t = t.substr(3);
  }
  for (const auto& [name, num] : k_names) {
    if (t == name) {
      return num;
    }
  }
  if (!t.empty() && t.size() <= 2 &&
      t.find_first_not_of("0123456789") == std::string::npos) {
    int n = std::stoi(t);
    if (n >= 1 && n < NSIG) {
      return n;
    }
  }
  return 0;
}

}  // namespace godislock::supervisor
