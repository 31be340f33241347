// SPDX-License-Identifier: MIT
// Supervising the command: signals forwarded, the lease enforced, the whole
// process tree reached through /proc. Linux-only (/proc, subreaper).
#include "supervisor/supervisor.hpp"

#include "signals/signals.hpp"
#include "util/log.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
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

const int k_forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

bool is_forwarded(int sig) {
  for (int s : k_forwarded) {
    if (s == sig) {
      return true;
    }
  }
  return false;
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

// Reaps whatever has exited; true with the status when `child` has exited
// or been stopped (stopped: *stopped = true); an error when waitpid fails
// while the child has not been reaped (it cannot be watched any more).
util::Result<bool> reap(pid_t child, int* status, bool* stopped) {
  bool found = false;
  for (;;) {
    int st = 0;
    pid_t p = ::waitpid(-1, &st, WNOHANG | WUNTRACED);
    if (p < 0 && errno == EINTR) {
      continue;
    }
    if (p < 0 && errno != ECHILD) {
      return Error{ErrorKind::io,
                   fmt::format("waitpid: {}", std::strerror(errno))};
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

// One supervision: the state of the loop in supervise(), each step a method.
class Supervision {
 public:
  Supervision(const Spawned& child, Policy policy)
      : m_child(child), m_policy(std::move(policy)) {}

  Outcome run();

 private:
  bool is_done();
  void fire_alarm_if_due();
  int poll_timeout_ms() const;
  void check_deadlines();
  void lose(Clock::time_point at, bool by_deadline);
  void send_kill();
  void take_signals();
  void on_child_changed(int status, bool stopped);
  void abandon(std::string why);
  void take_terminal_back();

  const Spawned& m_child;
  Policy m_policy;
  Outcome m_out;
  bool m_exited = false;
  bool m_kill_sent = false;
  Clock::time_point m_kill_at{};
};

Outcome Supervision::run() {
  int wake_fd = m_policy.wake_fd;
  if (wake_fd >= 0) {
    ::fcntl(wake_fd, F_SETFL, ::fcntl(wake_fd, F_GETFL) | O_NONBLOCK);
  }
  for (;;) {
    check_deadlines();
    if (is_done()) {
      break;
    }
    fire_alarm_if_due();
    pollfd p[2] = {{signals::fd(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
    int n = ::poll(p, 2, poll_timeout_ms());
    if (n < 0 && errno != EINTR) {
      abandon(fmt::format("poll: {}", std::strerror(errno)));
      break;
    }
    // An fd closed or broken under us would make poll return at once,
    // forever: nothing could be supervised any more.
    if (n > 0 && ((p[0].revents | p[1].revents) & (POLLNVAL | POLLERR))) {
      abandon("poll: a supervised file descriptor is invalid");
      break;
    }
    if (n > 0 && (p[1].revents & (POLLIN | POLLHUP)) != 0) {
      char buf[16];
      while (::read(wake_fd, buf, sizeof buf) > 0) {
      }
      lose(Clock::now(), false);
    }
    if (n > 0 && (p[0].revents & POLLIN) != 0) {
      take_signals();
      if (m_out.failed) {
        break;
      }
    }
  }
  take_terminal_back();
  return m_out;
}

bool Supervision::is_done() {
  if (!m_exited) {
    return false;
  }
  if (!m_out.lost && !m_policy.wait_tree) {
    return true;
  }
  if (tree_alive(m_child.pid)) {
    return false;
  }
  if (m_out.lost && m_out.killed_at == Clock::time_point{}) {
    m_out.killed_at = Clock::now();  // gone before SIGKILL was due
  }
  return true;
}

void Supervision::fire_alarm_if_due() {
  if (m_policy.alarm.fire && !m_exited && Clock::now() >= m_policy.alarm.at) {
    auto fire = std::move(m_policy.alarm.fire);
    m_policy.alarm.fire = nullptr;
    fire();
  }
}

// How long poll may sleep: until SIGKILL is due, the lease's give-up point
// or the alarm; 10 ms rounds while a lost tree is being killed.
int Supervision::poll_timeout_ms() const {
  auto now = Clock::now();
  Clock::time_point wake = Clock::time_point::max();
  if (m_exited && m_out.lost) {
    wake = now + std::chrono::milliseconds(10);
  } else if (m_out.lost && !m_kill_sent) {
    wake = m_kill_at;
  } else if (!m_out.lost && m_policy.lease != nullptr) {
    wake = m_policy.lease->give_up_at();
  }
  if (m_policy.alarm.fire && !m_exited) {
    wake = std::min(wake, m_policy.alarm.at);
  }
  if (wake == Clock::time_point::max()) {
    return -1;
  }
  // Rounded up: waking early would only spin until the time is due.
  auto left = std::chrono::ceil<std::chrono::milliseconds>(wake - now);
  return static_cast<int>(
      std::clamp<long long>(left.count(), 0, 24LL * 3600 * 1000));
}

// The lease is enforced here, from the last successful refresh, whether or
// not the refresher (a thread that may stall) ever reports.
void Supervision::check_deadlines() {
  auto now = Clock::now();
  const lock::LeaseClock* lease = m_policy.lease;
  if (!m_out.lost && lease != nullptr) {
    auto give_up = lease->give_up_at();
    if (now >= give_up) {
      lose(give_up, true);
    }
  }
  if (m_out.lost && !m_kill_sent && (m_exited || now >= m_kill_at)) {
    // With the child gone, the rest of its tree gets no more grace than
    // the lease allows.
    send_kill();
  } else if (m_out.lost && m_exited) {
    // Lost, child gone, SIGKILL sent: waiting for the rest of the tree to
    // go. SIGKILL again each round: a grandchild being reparented to us
    // when the tree was walked (its parent just died) was in no children
    // list.
    int st;
    bool stopped;
    (void)reap(m_child.pid, &st, &stopped);
    signal_tree(m_child.pid, SIGKILL);
  }
}

// The lease is given up: the tree gets the kill signal now and SIGKILL
// kill_after after the earlier of `at` and the give-up point, so a late
// report never delays the kill past what the lease allows.
void Supervision::lose(Clock::time_point at, bool by_deadline) {
  if (m_out.lost) {
    return;
  }
  m_out.lost = true;
  m_out.lost_by_deadline = by_deadline;
  m_out.lost_signalled_at = Clock::now();
  if (const lock::LeaseClock* lease = m_policy.lease) {
    at = std::min(at, lease->give_up_at());
    m_out.lease_end = lease->valid_until();
  }
  m_kill_at = at + m_policy.kill_after;
  GODISLOCK_DEBUG("sending signal {} to the child's process tree",
                  m_policy.kill_signal);
  signal_tree(m_child.pid, m_policy.kill_signal);
}

void Supervision::send_kill() {
  m_kill_sent = true;
  signal_tree(m_child.pid, SIGKILL);
  m_out.killed_at = Clock::now();
  if (m_out.lease_end != Clock::time_point{}) {
    GODISLOCK_DEBUG(
        "sent SIGKILL to the child's process tree {} ms before the lease "
        "could end",
        std::chrono::duration_cast<std::chrono::milliseconds>(m_out.lease_end -
                                                              m_out.killed_at)
            .count());
  }
}

void Supervision::take_signals() {
  while (int sig = signals::take()) {
    if (sig == SIGCHLD) {
      int st = 0;
      bool stopped = false;
      auto found = reap(m_child.pid, &st, &stopped);
      if (!found) {
        abandon(found.error().message);
        return;
      }
      if (*found) {
        on_child_changed(st, stopped);
      }
    } else if (is_forwarded(sig)) {
      GODISLOCK_DEBUG("forwarding signal {} to the child", sig);
      m_out.forwarded = sig;
      if (m_exited) {
        signal_tree(m_child.pid, sig);  // --wait-tree: the rest of it
      } else {
        ::kill(-m_child.pid, sig);
      }
    }
  }
}

void Supervision::on_child_changed(int status, bool stopped) {
  if (!stopped) {
    m_out.wait_status = status;
    m_out.exited_at = Clock::now();
    m_exited = true;
    return;
  }
  if (m_child.owns_terminal) {
    // Job control: the child was stopped at the terminal (Ctrl-Z); stop
    // ourselves too so the shell sees the job stop, and pass SIGCONT on.
    // Without a terminal a stop comes from outside (kill -STOP): we keep
    // refreshing, the lock stays held.
    take_terminal_back();
    ::kill(::getpid(), SIGSTOP);
    ::tcsetpgrp(m_child.terminal_fd, m_child.pid);
    ::kill(-m_child.pid, SIGCONT);
  }
}

// Supervision cannot go on: kill the whole tree (nothing could stop it in
// time otherwise) and wait a bounded time for it to go.
void Supervision::abandon(std::string why) {
  GODISLOCK_ERROR("cannot supervise the command any more ({}); killing it",
                  why);
  m_out.failed = true;
  m_out.failure = std::move(why);
  auto until = Clock::now() + std::chrono::seconds(10);
  do {
    signal_tree(m_child.pid, SIGKILL);
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    if (!tree_alive(m_child.pid)) {
      break;
    }
    ::usleep(10000);
  } while (Clock::now() < until);
  m_out.killed_at = Clock::now();
}

void Supervision::take_terminal_back() {
  if (m_child.owns_terminal) {
    // SIGTTOU is blocked, so a background process may do this.
    ::tcsetpgrp(m_child.terminal_fd, ::getpgrp());
  }
}

}  // namespace

Outcome supervise(const Spawned& child, Policy policy) {
  return Supervision(child, std::move(policy)).run();
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
