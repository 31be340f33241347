// SPDX-License-Identifier: MIT
#include "supervisor/supervisor.hpp"

#include "signals/signals.hpp"

#include <gtest/gtest.h>
#include <atomic>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace sup = godislock::supervisor;
namespace lock = godislock::lock;
using godislock::util::Clock;
using std::chrono::milliseconds;
using Words = std::vector<std::string>;

// The signal mask and SIGPIPE disposition the process had before
// init_signals() changed them: what every child must get back.
sigset_t g_mask_before;
struct sigaction g_sigpipe_before;

// init_signals() is once per process; the test binary also becomes a child
// subreaper, as app::run does before spawning, so that orphaned grandchildren
// are ours to reap (PID 1 of a container may never reap them).
void ensure_signals() {
  static bool done = false;
  if (done) {
    return;
  }
  ASSERT_EQ(::sigprocmask(SIG_BLOCK, nullptr, &g_mask_before), 0);
  ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &g_sigpipe_before), 0);
  auto st = godislock::signals::init();
  ASSERT_TRUE(st.ok()) << st.error().message;
  ASSERT_GE(godislock::signals::fd(), 0);
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  done = true;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  {
    std::ofstream f(path, std::ios::binary);
    f << text;
  }
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

// Waits (bounded) until `path` has a complete line; returns it.
std::string wait_for_line(const std::string& path) {
  auto until = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < until) {
    std::string s = read_file(path);
    if (!s.empty() && s.back() == '\n') {
      s.pop_back();
      return s;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  return "";
}

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

// Waits (bounded) until `pid` sits in nanosleep: a freshly exec'd sleep(1)
// has finished dynamic loading (ld.so briefly holds fd 3) and startup.
bool wait_until_sleeping(pid_t pid) {
  std::string file = "/proc/" + std::to_string(pid) + "/syscall";
  auto until = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < until) {
    std::istringstream in(read_file(file));
    long nr = -1;
    in >> nr;
    if (nr == SYS_clock_nanosleep || nr == SYS_nanosleep) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  return false;
}

// A non-blocking pipe like the one app::run gives supervise().
struct WakePipe {
  int rd = -1;
  int wr = -1;
  WakePipe() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0) {
      rd = p[0];
      wr = p[1];
    }
  }
  ~WakePipe() {
    ::close(rd);
    ::close(wr);
  }
  WakePipe(const WakePipe&) = delete;
  WakePipe& operator=(const WakePipe&) = delete;
};

const Words k_env = {"PATH=/usr/bin:/bin", "LC_ALL=C"};

sup::Policy policy(int wake_fd, int kill_signal, milliseconds kill_after,
                   sup::Alarm alarm = {}) {
  sup::Policy p;
  p.wake_fd = wake_fd;
  p.kill_signal = kill_signal;
  p.kill_after = kill_after;
  p.alarm = std::move(alarm);
  return p;
}

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ensure_signals();
    ASSERT_FALSE(HasFatalFailure());
    // A watchdog: a hung supervise() kills the binary instead of the CI job.
    ::alarm(60);
    char tmpl[] = "/tmp/godislock-sup-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    m_dir = tmpl;
  }
  void TearDown() override {
    ::alarm(0);
    std::error_code ec;
    std::filesystem::remove_all(m_dir, ec);
    // No test may leave a child behind (supervise() reaps any child).
    int st;
    while (::waitpid(-1, &st, WNOHANG) > 0) {
      ADD_FAILURE() << "a child was left unreaped";
    }
  }

  std::string path(const std::string& name) const { return m_dir + "/" + name; }

  sup::Spawned spawn_sh(const std::string& script, const Words& env = k_env) {
    int exec_errno = -1;
    auto child = sup::spawn("/bin/sh", {"sh", "-c", script}, env, &exec_errno);
    EXPECT_TRUE(child.ok()) << child.error().message;
    EXPECT_EQ(exec_errno, 0);
    return child.ok() ? *child : sup::Spawned{};
  }

  // Runs `script` with /bin/sh as a spawned child and supervises it with
  // no wake fd; returns the wait status (or -1 if spawning failed).
  int run_sh(const std::string& script, const Words& env = k_env) {
    sup::Spawned child = spawn_sh(script, env);
    if (child.pid <= 0) {
      return -1;
    }
    sup::Outcome out =
        sup::supervise(child, policy(-1, SIGTERM, milliseconds(5000)));
    EXPECT_FALSE(out.lost);
    return out.wait_status;
  }

  std::string m_dir;
};

// --- exit_code_for, exec_failure_code, parse_signal ---

TEST(SupervisorCodes, ExitCodeForExitedChild) {
  for (int code : {0, 3, 255}) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::_exit(code);
    }
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
    EXPECT_EQ(sup::exit_code_for(st), code);
  }
}

TEST(SupervisorCodes, ExitCodeForKilledChild) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    for (;;) {
      ::pause();
    }
  }
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(st));
  EXPECT_EQ(sup::exit_code_for(st), 137);
}

TEST(SupervisorCodes, ExecFailureCode) {
  EXPECT_EQ(sup::exec_failure_code(ENOENT), 127);
  EXPECT_EQ(sup::exec_failure_code(EACCES), 126);
  EXPECT_EQ(sup::exec_failure_code(ENOEXEC), 126);
  EXPECT_EQ(sup::exec_failure_code(EPERM), 126);
}

TEST(SupervisorCodes, ParseSignal) {
  EXPECT_EQ(sup::parse_signal("TERM"), SIGTERM);
  EXPECT_EQ(sup::parse_signal("SIGTERM"), SIGTERM);
  EXPECT_EQ(sup::parse_signal("15"), SIGTERM);
  EXPECT_EQ(sup::parse_signal("KILL"), SIGKILL);
  EXPECT_EQ(sup::parse_signal("SIGKILL"), SIGKILL);
  EXPECT_EQ(sup::parse_signal("9"), SIGKILL);
  EXPECT_EQ(sup::parse_signal("INT"), SIGINT);
  EXPECT_EQ(sup::parse_signal("HUP"), SIGHUP);
  EXPECT_EQ(sup::parse_signal("QUIT"), SIGQUIT);
  EXPECT_EQ(sup::parse_signal("USR1"), SIGUSR1);
  EXPECT_EQ(sup::parse_signal("SIGUSR2"), SIGUSR2);
  EXPECT_EQ(sup::parse_signal("bogus"), 0);
  EXPECT_EQ(sup::parse_signal("SIGBOGUS"), 0);
  EXPECT_EQ(sup::parse_signal(""), 0);
  EXPECT_EQ(sup::parse_signal("SIG"), 0);
  EXPECT_EQ(sup::parse_signal("0"), 0);
  EXPECT_EQ(sup::parse_signal("99"), 0);
  EXPECT_EQ(sup::parse_signal("-15"), 0);
  EXPECT_EQ(sup::parse_signal("15x"), 0);
  EXPECT_EQ(sup::parse_signal("100000000000000000000"), 0);
}

// --- resolve_command ---

// Sets PATH for one test and restores it afterwards.
class ScopedPath {
 public:
  explicit ScopedPath(const std::string& value) {
    if (const char* old = std::getenv("PATH")) {
      m_old = old;
    }
    ::setenv("PATH", value.c_str(), 1);
  }
  ~ScopedPath() {
    if (m_old) {
      ::setenv("PATH", m_old->c_str(), 1);
    } else {
      ::unsetenv("PATH");
    }
  }
  ScopedPath(const ScopedPath&) = delete;
  ScopedPath& operator=(const ScopedPath&) = delete;

 private:
  std::optional<std::string> m_old;
};

TEST_F(SupervisorTest, ResolveAbsolutePath) {
  auto r = sup::resolve_command("/bin/sh");
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.path, "/bin/sh");

  auto missing = sup::resolve_command(path("nope"));
  EXPECT_EQ(missing.error, ENOENT);

  write_file(path("plain"), "echo hi\n", 0644);
  EXPECT_EQ(sup::resolve_command(path("plain")).error, EACCES);

  ASSERT_EQ(::mkdir(path("dir").c_str(), 0755), 0);
  EXPECT_EQ(sup::resolve_command(path("dir")).error, EACCES);

  // A path through a regular file is "not found", as for execve(2).
  EXPECT_EQ(sup::resolve_command(path("plain") + "/x").error, ENOENT);
  EXPECT_EQ(sup::resolve_command("").error, ENOENT);
}

TEST_F(SupervisorTest, ResolveSearchesPath) {
  std::string a = path("a");
  std::string b = path("b");
  ASSERT_EQ(::mkdir(a.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(b.c_str(), 0755), 0);
  write_file(a + "/tool", "exit 0\n", 0644);  // not executable
  write_file(b + "/tool", "exit 0\n", 0755);  // executable
  write_file(a + "/both", "exit 0\n", 0755);
  write_file(b + "/both", "exit 0\n", 0755);
  write_file(a + "/noexec", "exit 0\n", 0644);
  ASSERT_EQ(::mkdir((b + "/isdir").c_str(), 0755), 0);
  ScopedPath scoped(a + ":" + path("missing-dir") + ":" + b);

  auto tool = sup::resolve_command("tool");
  EXPECT_EQ(tool.error, 0);
  EXPECT_EQ(tool.path, b + "/tool");

  auto both = sup::resolve_command("both");
  EXPECT_EQ(both.error, 0);
  EXPECT_EQ(both.path, a + "/both");

  EXPECT_EQ(sup::resolve_command("noexec").error, EACCES);
  EXPECT_EQ(sup::resolve_command("isdir").error, EACCES);
  EXPECT_EQ(sup::resolve_command("absent").error, ENOENT);
  // The real sh is not on this PATH.
  EXPECT_EQ(sup::resolve_command("sh").error, ENOENT);
}

TEST_F(SupervisorTest, ResolveEmptyPathElementIsCurrentDirectory) {
  write_file(path("here"), "exit 0\n", 0755);
  char old_cwd[4096];
  ASSERT_NE(::getcwd(old_cwd, sizeof old_cwd), nullptr);
  ASSERT_EQ(::chdir(m_dir.c_str()), 0);
  {
    ScopedPath scoped("/nonexistent-dir:");
    auto r = sup::resolve_command("here");
    EXPECT_EQ(r.error, 0);
    EXPECT_EQ(r.path, "./here");
  }
  ASSERT_EQ(::chdir(old_cwd), 0);
}

// --- spawn + supervise with real children ---

TEST_F(SupervisorTest, ExitCodeThroughShell) {
  int st = run_sh("exit 5");
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(sup::exit_code_for(st), 5);
  EXPECT_EQ(sup::exit_code_for(run_sh("exit 0")), 0);
  EXPECT_EQ(sup::exit_code_for(run_sh("exit 255")), 255);
}

TEST_F(SupervisorTest, ChildKilledBySignalThroughShell) {
  int st = run_sh("kill -TERM $$");
  ASSERT_TRUE(WIFSIGNALED(st));
  EXPECT_EQ(WTERMSIG(st), SIGTERM);
  EXPECT_EQ(sup::exit_code_for(st), 143);
  EXPECT_EQ(sup::exit_code_for(run_sh("kill -KILL $$")), 137);
}

TEST_F(SupervisorTest, OutcomeOfAPlainRun) {
  sup::Spawned child = spawn_sh("exit 42");
  ASSERT_GT(child.pid, 0);
  WakePipe wake;
  sup::Outcome out =
      sup::supervise(child, policy(wake.rd, SIGTERM, milliseconds(100)));
  EXPECT_FALSE(out.lost);
  EXPECT_EQ(out.forwarded, 0);
  ASSERT_TRUE(WIFEXITED(out.wait_status));
  EXPECT_EQ(WEXITSTATUS(out.wait_status), 42);
  // Reaped: the pid is gone.
  EXPECT_FALSE(process_exists(child.pid));
}

TEST_F(SupervisorTest, ChildGetsItsOwnProcessGroup) {
  sup::Spawned child = spawn_sh("exec sleep 30");
  ASSERT_GT(child.pid, 0);
  EXPECT_EQ(::getpgid(child.pid), child.pid);
  EXPECT_NE(::getpgid(child.pid), ::getpgrp());
  ::kill(-child.pid, SIGKILL);
  sup::Outcome out =
      sup::supervise(child, policy(-1, SIGTERM, milliseconds(100)));
  EXPECT_TRUE(WIFSIGNALED(out.wait_status));
}

TEST_F(SupervisorTest, ExecOfNonExecutableFileIsEacces) {
  write_file(path("plain"), "exit 0\n", 0644);
  int exec_errno = 0;
  auto r = sup::spawn(path("plain"), {"plain"}, k_env, &exec_errno);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(exec_errno, EACCES);
  EXPECT_EQ(sup::exec_failure_code(exec_errno), 126);
  // The failed child was reaped by spawn().
  int st;
  EXPECT_EQ(::waitpid(-1, &st, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST_F(SupervisorTest, ExecOfMissingFileIsEnoent) {
  int exec_errno = 0;
  auto r = sup::spawn(path("absent"), {"absent"}, k_env, &exec_errno);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(exec_errno, ENOENT);
  EXPECT_EQ(sup::exec_failure_code(exec_errno), 127);
  int st;
  EXPECT_EQ(::waitpid(-1, &st, WNOHANG), -1);
}

TEST_F(SupervisorTest, ExecOfDirectoryIsEacces) {
  int exec_errno = 0;
  auto r = sup::spawn(m_dir, {"dir"}, k_env, &exec_errno);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(exec_errno, EACCES);
}

TEST_F(SupervisorTest, ScriptWithoutShebangRunsUnderSh) {
  // execvp(3) semantics: ENOEXEC falls back to /bin/sh with the arguments.
  write_file(path("script"), "exit $(($1 + 4))\n", 0755);
  int exec_errno = -1;
  auto child = sup::spawn(path("script"), {"script", "3"}, k_env, &exec_errno);
  ASSERT_TRUE(child.ok()) << child.error().message;
  EXPECT_EQ(exec_errno, 0);
  sup::Outcome out =
      sup::supervise(*child, policy(-1, SIGTERM, milliseconds(100)));
  EXPECT_EQ(sup::exit_code_for(out.wait_status), 7);
}

TEST_F(SupervisorTest, ArgvReachesTheChildUnchanged) {
  std::string out = path("argv");
  Words argv = {"sh", "-c", "printf '%s|' \"$@\" > \"$0\"", out, "--ttl", "a b",
                "",   "-n"};
  int exec_errno = -1;
  auto child = sup::spawn("/bin/sh", argv, k_env, &exec_errno);
  ASSERT_TRUE(child.ok()) << child.error().message;
  sup::Outcome o =
      sup::supervise(*child, policy(-1, SIGTERM, milliseconds(100)));
  EXPECT_EQ(sup::exit_code_for(o.wait_status), 0);
  EXPECT_EQ(read_file(out), "--ttl|a b||-n|");
}

TEST_F(SupervisorTest, EnvironmentIsExactlyWhatWasPassed) {
  std::string out = path("environ");
  Words env = {"A=1", "B=two words", "EMPTY=", "GODISLOCK_LOCK=x:y",
               "Z=\xc3\xa9"};
  int st = run_sh("/bin/cat /proc/$$/environ > " + out, env);
  ASSERT_EQ(sup::exit_code_for(st), 0);
  std::string want;
  for (const auto& e : env) {
    want += e;
    want.push_back('\0');
  }
  EXPECT_EQ(read_file(out), want);
}

TEST_F(SupervisorTest, EmptyEnvironment) {
  std::string out = path("environ");
  int st = run_sh("/bin/cat /proc/$$/environ > " + out, {});
  ASSERT_EQ(sup::exit_code_for(st), 0);
  EXPECT_EQ(read_file(out), "");
}

// The fds of this process that a child would inherit (no FD_CLOEXEC).
std::set<int> inheritable_fds() {
  std::set<int> out;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) {
    return out;
  }
  int self = ::dirfd(d);
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') {
      continue;
    }
    int fd = std::atoi(e->d_name);
    if (fd == self) {
      continue;
    }
    int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC) == 0) {
      out.insert(fd);
    }
  }
  ::closedir(d);
  return out;
}

TEST_F(SupervisorTest, ChildHasNoFdsOfOurs) {
  // Fds of ours that must not leak: the signalfd, a wake pipe, a file.
  WakePipe wake;
  int file = ::open(path("held").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(file, 0);
  std::set<int> ours = {godislock::signals::fd(), wake.rd, wake.wr, file};

  std::set<int> expected = inheritable_fds();
  expected.insert({0, 1, 2});
  // Exec sleep directly (a shell would add fds of its own, e.g. dash saves
  // stdout in fd 10+ around a redirection) and read its fd table from here:
  // spawn() returns only once exec has succeeded.
  int exec_errno = -1;
  auto child = sup::spawn("/bin/sleep", {"sleep", "30"}, k_env, &exec_errno);
  ::close(file);
  ASSERT_TRUE(child.ok()) << child.error().message;
  EXPECT_TRUE(wait_until_sleeping(child->pid));
  std::set<int> got;
  std::string fd_dir = "/proc/" + std::to_string(child->pid) + "/fd";
  for (const auto& e : std::filesystem::directory_iterator(fd_dir)) {
    got.insert(std::atoi(e.path().filename().c_str()));
  }
  ::kill(child->pid, SIGKILL);
  sup::Outcome out =
      sup::supervise(*child, policy(-1, SIGTERM, milliseconds(100)));
  EXPECT_EQ(WTERMSIG(out.wait_status), SIGKILL);

  EXPECT_EQ(got, expected);
  for (int fd : ours) {
    EXPECT_EQ(got.count(fd), 0u) << "fd " << fd << " leaked to the child";
  }
}

// Parses a hex mask line ("SigBlk:\t0000000000010000") from /proc status.
uint64_t status_mask(const std::string& status, const std::string& key) {
  auto at = status.find(key + ":\t");
  if (at == std::string::npos) {
    ADD_FAILURE() << key << " not in status";
    return 0;
  }
  return std::stoull(status.substr(at + key.size() + 2, 16), nullptr, 16);
}

TEST_F(SupervisorTest, ChildGetsOriginalSignalMaskAndSigpipe) {
  // Inspect an exec'd sleep(1) (which changes neither) rather than a shell:
  // dash blocks all signals around its own vfork().
  int exec_errno = -1;
  auto child = sup::spawn("/bin/sleep", {"sleep", "30"}, k_env, &exec_errno);
  ASSERT_TRUE(child.ok()) << child.error().message;
  EXPECT_TRUE(wait_until_sleeping(child->pid));
  std::string status =
      read_file("/proc/" + std::to_string(child->pid) + "/status");
  ::kill(child->pid, SIGKILL);
  sup::Outcome out =
      sup::supervise(*child, policy(-1, SIGTERM, milliseconds(100)));
  EXPECT_EQ(WTERMSIG(out.wait_status), SIGKILL);

  uint64_t want_blocked = 0;
  for (int s = 1; s <= 64; ++s) {
    if (sigismember(&g_mask_before, s) == 1) {
      want_blocked |= uint64_t{1} << (s - 1);
    }
  }
  EXPECT_EQ(status_mask(status, "SigBlk"), want_blocked) << status;
  uint64_t ignored = status_mask(status, "SigIgn");
  bool pipe_ignored = ((ignored >> (SIGPIPE - 1)) & 1) != 0;
  EXPECT_EQ(pipe_ignored, g_sigpipe_before.sa_handler == SIG_IGN) << status;
}

TEST_F(SupervisorTest, ForwardsSignalsToTheChild) {
  // exec: no grandchild that could outlive the child (supervise() waits for
  // the rest of the tree only after a loss).
  sup::Spawned child = spawn_sh("exec sleep 30");
  ASSERT_GT(child.pid, 0);
  // Blocked in this thread, so it waits on the signalfd for supervise().
  ASSERT_EQ(::pthread_kill(::pthread_self(), SIGUSR1), 0);
  sup::Outcome out =
      sup::supervise(child, policy(-1, SIGTERM, milliseconds(100)));
  EXPECT_FALSE(out.lost);
  EXPECT_EQ(out.forwarded, SIGUSR1);
  ASSERT_TRUE(WIFSIGNALED(out.wait_status)) << out.wait_status;
  EXPECT_EQ(WTERMSIG(out.wait_status), SIGUSR1);
  EXPECT_EQ(sup::exit_code_for(out.wait_status), 128 + SIGUSR1);
}

// Writes a byte to `fd` after `delay`, from a thread (as the refresher
// does); joins in the destructor.
class DelayedWake {
 public:
  DelayedWake(int fd, milliseconds delay, std::string wait_for_file = "")
      : m_thread([=] {
          if (!wait_for_file.empty()) {
            wait_for_line(wait_for_file);
          }
          std::this_thread::sleep_for(delay);
          char b = 1;
          ssize_t n = ::write(fd, &b, 1);
          (void)n;
        }) {}
  ~DelayedWake() { m_thread.join(); }
  DelayedWake(const DelayedWake&) = delete;
  DelayedWake& operator=(const DelayedWake&) = delete;

 private:
  std::thread m_thread;
};

TEST_F(SupervisorTest, WakeFdSendsKillSignalAndReportsLost) {
  sup::Spawned child = spawn_sh("sleep 30");
  ASSERT_GT(child.pid, 0);
  WakePipe wake;
  auto start = Clock::now();
  sup::Outcome out;
  {
    DelayedWake waker(wake.wr, milliseconds(50));
    out = sup::supervise(child, policy(wake.rd, SIGTERM, milliseconds(5000)));
  }
  auto took = Clock::now() - start;
  EXPECT_TRUE(out.lost);
  ASSERT_TRUE(WIFSIGNALED(out.wait_status)) << out.wait_status;
  EXPECT_EQ(WTERMSIG(out.wait_status), SIGTERM);
  EXPECT_GE(out.lost_signalled_at, start);
  // TERM worked: no wait for the 5 s grace.
  EXPECT_LT(took, milliseconds(4000));
}

TEST_F(SupervisorTest, KillSignalIsConfigurable) {
  sup::Spawned child = spawn_sh("sleep 30");
  ASSERT_GT(child.pid, 0);
  WakePipe wake;
  sup::Outcome out;
  {
    DelayedWake waker(wake.wr, milliseconds(20));
    out = sup::supervise(
        child, policy(wake.rd, sup::parse_signal("USR2"), milliseconds(5000)));
  }
  EXPECT_TRUE(out.lost);
  ASSERT_TRUE(WIFSIGNALED(out.wait_status));
  EXPECT_EQ(WTERMSIG(out.wait_status), SIGUSR2);
}

TEST_F(SupervisorTest, TrappedTermGetsSigkillAfterGraceWithGrandchild) {
  std::string pidfile = path("grandchild");
  sup::Spawned child =
      spawn_sh("trap '' TERM; sleep 30 & echo $! > " + pidfile + "; wait");
  ASSERT_GT(child.pid, 0);
  WakePipe wake;
  sup::Outcome out;
  {
    DelayedWake waker(wake.wr, milliseconds(10), pidfile);
    out = sup::supervise(child, policy(wake.rd, SIGTERM, milliseconds(200)));
  }
  auto returned = Clock::now();
  pid_t grandchild = std::atoi(read_file(pidfile).c_str());
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(out.lost);
  ASSERT_TRUE(WIFSIGNALED(out.wait_status)) << out.wait_status;
  EXPECT_EQ(WTERMSIG(out.wait_status), SIGKILL);
  // SIGKILL only after the grace.
  EXPECT_GE(returned - out.lost_signalled_at, milliseconds(200));
  EXPECT_LT(returned - out.lost_signalled_at, milliseconds(10000));
  EXPECT_FALSE(process_exists(grandchild)) << "grandchild " << grandchild;
}

TEST_F(SupervisorTest, GrandchildIsGoneAfterLoss) {
  std::string pidfile = path("grandchild");
  sup::Spawned child = spawn_sh("sleep 30 & echo $! > " + pidfile + "; wait");
  ASSERT_GT(child.pid, 0);
  WakePipe wake;
  sup::Outcome out;
  {
    DelayedWake waker(wake.wr, milliseconds(10), pidfile);
    out = sup::supervise(child, policy(wake.rd, SIGTERM, milliseconds(5000)));
  }
  pid_t grandchild = std::atoi(read_file(pidfile).c_str());
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(out.lost);
  ASSERT_TRUE(WIFSIGNALED(out.wait_status));
  EXPECT_EQ(WTERMSIG(out.wait_status), SIGTERM);
  EXPECT_FALSE(process_exists(grandchild)) << "grandchild " << grandchild;
}

TEST_F(SupervisorTest, DescendantInItsOwnSessionIsGoneAfterLoss) {
  // setsid(1) takes the grandchild out of the child's process group: only
  // the descendant walk can reach it.
  std::string pidfile = path("grandchild");
  sup::Spawned child =
      spawn_sh("setsid sleep 30 & echo $! > " + pidfile + "; wait");
  ASSERT_GT(child.pid, 0);
  WakePipe wake;
  sup::Outcome out;
  {
    DelayedWake waker(wake.wr, milliseconds(50), pidfile);
    out = sup::supervise(child, policy(wake.rd, SIGTERM, milliseconds(300)));
  }
  pid_t grandchild = std::atoi(read_file(pidfile).c_str());
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(out.lost);
  EXPECT_FALSE(process_exists(grandchild)) << "grandchild " << grandchild;
}

TEST_F(SupervisorTest, ChildThatExitsOnItsOwnIsNotLost) {
  // A wake fd that never fires does not disturb a normal exit.
  WakePipe wake;
  sup::Spawned child = spawn_sh("exit 9");
  ASSERT_GT(child.pid, 0);
  sup::Outcome out =
      sup::supervise(child, policy(wake.rd, SIGTERM, milliseconds(50)));
  EXPECT_FALSE(out.lost);
  EXPECT_EQ(sup::exit_code_for(out.wait_status), 9);
}

// --- Alarm (the lazy start of the refresher thread) ---

TEST_F(SupervisorTest, AlarmFiresOnceWhileTheChildRuns) {
  sup::Spawned child = spawn_sh("sleep 0.3");
  ASSERT_GT(child.pid, 0);
  int fired = 0;
  Clock::time_point fired_at{};
  auto due = Clock::now() + milliseconds(50);
  sup::Outcome out = sup::supervise(
      child, policy(-1, SIGTERM, milliseconds(100), {due, [&] {
                                                       fired++;
                                                       fired_at = Clock::now();
                                                     }}));
  EXPECT_TRUE(WIFEXITED(out.wait_status));
  EXPECT_EQ(fired, 1);
  EXPECT_GE(fired_at, due);
  // Not long after it was due (generous: the machine may be loaded).
  EXPECT_LT(fired_at, due + milliseconds(250));
}

TEST_F(SupervisorTest, AlarmDueAlreadyFiresAtOnce) {
  sup::Spawned child = spawn_sh("sleep 0.2");
  ASSERT_GT(child.pid, 0);
  int fired = 0;
  sup::Outcome out = sup::supervise(
      child, policy(-1, SIGTERM, milliseconds(100),
                    {Clock::now() - milliseconds(1), [&] { fired++; }}));
  EXPECT_TRUE(WIFEXITED(out.wait_status));
  EXPECT_EQ(fired, 1);
}

TEST_F(SupervisorTest, AlarmNotFiredWhenTheChildEndsFirst) {
  sup::Spawned child = spawn_sh("exit 3");
  ASSERT_GT(child.pid, 0);
  int fired = 0;
  sup::Outcome out = sup::supervise(
      child,
      policy(-1, SIGTERM, milliseconds(100),
             {Clock::now() + std::chrono::seconds(30), [&] { fired++; }}));
  EXPECT_EQ(sup::exit_code_for(out.wait_status), 3);
  EXPECT_EQ(fired, 0);
}

// --- The lease enforced by the supervisor itself ---

// A lease of `ttl` that started now, with a kill grace of `kill_after`.
lock::LeaseClock lease_of(milliseconds ttl, milliseconds kill_after) {
  lock::LeaseTiming timing;
  EXPECT_TRUE(lock::make_timing(ttl, kill_after, &timing));
  return lock::LeaseClock(timing, Clock::now());
}

// Nobody refreshes and nobody writes the wake pipe (a stalled refresher):
// the command still gets TERM at the give-up point and, as it ignores TERM,
// SIGKILL before the lease can end.
TEST_F(SupervisorTest, LeaseIsEnforcedWhenTheRefresherNeverReports) {
  std::string pidfile = path("grandchild");
  sup::Spawned child =
      spawn_sh("trap '' TERM; sleep 30 & echo $! > " + pidfile + "; wait");
  ASSERT_GT(child.pid, 0);
  auto lease = lease_of(milliseconds(3000), milliseconds(300));
  WakePipe wake;  // never written
  sup::Policy p = policy(wake.rd, SIGTERM, milliseconds(300));
  p.lease = &lease;
  sup::Outcome out = sup::supervise(child, std::move(p));
  EXPECT_TRUE(out.lost);
  EXPECT_TRUE(out.lost_by_deadline);
  ASSERT_TRUE(WIFSIGNALED(out.wait_status)) << out.wait_status;
  EXPECT_EQ(WTERMSIG(out.wait_status), SIGKILL);
  EXPECT_GE(out.lost_signalled_at, lease.give_up_at());
  EXPECT_EQ(out.lease_end, lease.valid_until());
  auto margin =
      std::chrono::duration_cast<milliseconds>(out.lease_end - out.killed_at);
  std::printf("SIGKILL %lld ms before the end of a 3000 ms lease\n",
              static_cast<long long>(margin.count()));
  EXPECT_LT(out.killed_at, out.lease_end);
  pid_t grandchild = std::atoi(read_file(pidfile).c_str());
  ASSERT_GT(grandchild, 0);
  EXPECT_FALSE(process_exists(grandchild)) << "grandchild " << grandchild;
}

// Renewals move the deadline: a lease renewed in time is never given up.
TEST_F(SupervisorTest, RenewedLeaseIsNotGivenUp) {
  sup::Spawned child = spawn_sh("sleep 1");
  ASSERT_GT(child.pid, 0);
  auto lease = lease_of(milliseconds(600), milliseconds(100));
  std::atomic<bool> stop{false};
  std::thread renewer([&] {
    while (!stop) {
      lease.renewed(Clock::now());
      std::this_thread::sleep_for(milliseconds(20));
    }
  });
  sup::Policy p = policy(-1, SIGTERM, milliseconds(100));
  p.lease = &lease;
  sup::Outcome out = sup::supervise(child, std::move(p));
  stop = true;
  renewer.join();
  EXPECT_FALSE(out.lost);
  EXPECT_EQ(sup::exit_code_for(out.wait_status), 0);
}

// A loss reported late gets no more grace than the lease allows: SIGKILL
// is due kill_after after the give-up point, not after the report.
TEST_F(SupervisorTest, KillTimeCountsFromTheLeaseNotFromTheReport) {
  std::string ready = path("ready");
  sup::Spawned child =
      spawn_sh("trap '' TERM; echo ready > " + ready + "; sleep 30");
  ASSERT_GT(child.pid, 0);
  wait_for_line(ready);
  // A lease whose give-up point passed 200 ms ago.
  lock::LeaseTiming timing;
  ASSERT_TRUE(
      lock::make_timing(milliseconds(3000), milliseconds(1000), &timing));
  lock::LeaseClock lease(
      timing, Clock::now() - timing.give_up_after - milliseconds(200));
  WakePipe wake;
  sup::Policy p = policy(wake.rd, SIGTERM, timing.kill_after);
  p.lease = &lease;
  auto start = Clock::now();
  sup::Outcome out = sup::supervise(child, std::move(p));
  EXPECT_TRUE(out.lost);
  ASSERT_TRUE(WIFSIGNALED(out.wait_status));
  EXPECT_EQ(WTERMSIG(out.wait_status), SIGKILL);
  // Killed by give-up + kill_after, 800 ms after the start, not 1000 ms
  // after the loss was noticed.
  EXPECT_LE(out.killed_at,
            lease.give_up_at() + timing.kill_after + milliseconds(100));
  EXPECT_LT(out.killed_at - start, timing.kill_after);
}

// An fd that poll cannot watch (closed under us) must not read as a clean
// exit: the tree is killed and the outcome says supervision failed.
TEST_F(SupervisorTest, BrokenWakeFdKillsTheTreeAndFails) {
  sup::Spawned child = spawn_sh("sleep 30");
  ASSERT_GT(child.pid, 0);
  int closed_fd = -1;
  {
    WakePipe gone;
    closed_fd = gone.rd;
  }
  sup::Outcome out =
      sup::supervise(child, policy(closed_fd, SIGTERM, milliseconds(5000)));
  EXPECT_TRUE(out.failed);
  EXPECT_NE(out.failure.find("poll"), std::string::npos) << out.failure;
  EXPECT_FALSE(process_exists(child.pid));
}

// --wait-tree: supervise() returns only once the background process the
// command left behind has exited too; without it, at the command's exit.
TEST_F(SupervisorTest, WaitTreeHoldsOnUntilEveryDescendantExited) {
  ASSERT_EQ(sup::become_subreaper().ok(), true);
  std::string pidfile = path("background");
  std::string script = "sh -c 'sleep 0.5; echo done > " + path("done") +
                       "' & echo $! > " + pidfile + "; exit 3";
  sup::Spawned child = spawn_sh(script);
  ASSERT_GT(child.pid, 0);
  sup::Policy p = policy(-1, SIGTERM, milliseconds(100));
  p.wait_tree = true;
  sup::Outcome out = sup::supervise(child, std::move(p));
  EXPECT_FALSE(out.lost);
  EXPECT_EQ(sup::exit_code_for(out.wait_status), 3);
  EXPECT_EQ(read_file(path("done")), "done\n");
  pid_t background = std::atoi(read_file(pidfile).c_str());
  ASSERT_GT(background, 0);
  EXPECT_FALSE(process_exists(background));
}

TEST_F(SupervisorTest, WithoutWaitTreeTheBackgroundOutlivesTheCommand) {
  ASSERT_EQ(sup::become_subreaper().ok(), true);
  std::string pidfile = path("background");
  sup::Spawned child = spawn_sh("sleep 30 & echo $! > " + pidfile + "; exit 0");
  ASSERT_GT(child.pid, 0);
  sup::Outcome out =
      sup::supervise(child, policy(-1, SIGTERM, milliseconds(100)));
  EXPECT_FALSE(out.lost);
  pid_t background = std::atoi(read_file(pidfile).c_str());
  ASSERT_GT(background, 0);
  EXPECT_TRUE(process_exists(background));
  ::kill(background, SIGKILL);
  EXPECT_EQ(::waitpid(background, nullptr, 0), background);
}

}  // namespace
