// SPDX-License-Identifier: MIT
// timer: wall time of commands, run interleaved so that they share noise.
//
//   timer RUNS WARMUP -- CMD_A [ARGS...] ::: CMD_B [ARGS...] ::: ...
//
// Runs WARMUP rounds (not reported), then RUNS rounds of A, B, C, ... in
// turn. Each run is fork + execvp + waitpid, timed with CLOCK_MONOTONIC
// around the three; the child's stdout goes to /dev/null. Prints one line
// per timed run: "round index ns status". The fork/exec/wait cost of this
// helper is in every number alike; a bare `true` shows how large it is.
//
// TIMER_ENV_<index> (index of the command, from 0), if set, holds
// NAME=VALUE lines put into that command's environment only, so that a
// password reaches a command through its environment, never argv. The
// TIMER_ENV_* variables themselves are removed from every command's
// environment.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

long long now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

// The command's own environment: TIMER_ENV_<index>'s lines added, every
// TIMER_ENV_* removed (in the child, before exec).
void set_command_env(size_t index) {
  std::string own;
  if (const char* e =
          std::getenv(("TIMER_ENV_" + std::to_string(index)).c_str())) {
    own = e;
  }
  std::vector<std::string> ours;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "TIMER_ENV_", 10) == 0) {
      ours.emplace_back(*e, std::strcspn(*e, "="));
    }
  }
  for (const auto& name : ours) {
    unsetenv(name.c_str());
  }
  size_t pos = 0;
  while (pos < own.size()) {
    size_t end = own.find('\n', pos);
    if (end == std::string::npos) {
      end = own.size();
    }
    std::string line = own.substr(pos, end - pos);
    size_t eq = line.find('=');
    if (eq != std::string::npos && eq > 0) {
      setenv(line.substr(0, eq).c_str(), line.substr(eq + 1).c_str(), 1);
    }
    pos = end + 1;
  }
}

int run_once(const std::vector<char*>& argv, size_t index, int devnull) {
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("timer: fork");
    std::exit(2);
  }
  if (pid == 0) {
    dup2(devnull, STDOUT_FILENO);
    set_command_env(index);
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "timer: exec %s: %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || std::strcmp(argv[3], "--") != 0) {
    std::fprintf(stderr, "usage: timer RUNS WARMUP -- CMD ::: CMD ...\n");
    return 2;
  }
  int runs = std::atoi(argv[1]);
  int warmup = std::atoi(argv[2]);
  std::vector<std::vector<char*>> cmds(1);
  for (int i = 4; i < argc; ++i) {
    if (std::strcmp(argv[i], ":::") == 0) {
      cmds.emplace_back();
    } else {
      cmds.back().push_back(argv[i]);
    }
  }
  for (auto& c : cmds) {
    if (c.empty()) {
      std::fprintf(stderr, "timer: empty command\n");
      return 2;
    }
    c.push_back(nullptr);
  }
  int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  for (int r = -warmup; r < runs; ++r) {
    for (size_t i = 0; i < cmds.size(); ++i) {
      long long t0 = now_ns();
      int status = run_once(cmds[i], i, devnull);
      long long t1 = now_ns();
      if (r >= 0) {
        std::printf("%d %zu %lld %d\n", r, i, t1 - t0, status);
      }
    }
  }
  return 0;
}
