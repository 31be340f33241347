// SPDX-License-Identifier: MIT
#include "signals/signals.hpp"

#include "util/fd.hpp"

#include <fcntl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace godislock::signals {

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
}  // namespace

bool was_closed_at_start(int fd) {
  return fd >= 0 && fd <= 2 && g_closed_std[fd];
}

const sigset_t& original_mask() { return g_original_mask; }
const struct sigaction& original_sigpipe() { return g_original_sigpipe; }

util::Status init() {
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
    return Error{ErrorKind::io,
                 std::string("sigprocmask: ") + std::strerror(errno)};
  }
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  if (::sigaction(SIGPIPE, &ign, &g_original_sigpipe) != 0) {
    return Error{ErrorKind::io,
                 std::string("sigaction: ") + std::strerror(errno)};
  }
  int fd = ::signalfd(-1, &block, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) {
    return Error{ErrorKind::io,
                 std::string("signalfd: ") + std::strerror(errno)};
  }
  g_signal_fd.reset(fd);
  return util::ok_status();
}

int fd() { return g_signal_fd.get(); }

int take() {
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

}  // namespace godislock::signals
