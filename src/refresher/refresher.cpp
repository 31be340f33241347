// SPDX-License-Identifier: MIT
#include "refresher/refresher.hpp"

#include "config/duration.hpp"
#include "util/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace godislock::refresher {

namespace {

// How long after the command's start the failover watch may begin.
constexpr lock::Millis k_failover_watch_delay{50};

}  // namespace

using lock::Millis;
using util::Clock;
using util::Deadline;
using util::ErrorKind;

Refresher::Refresher(std::unique_ptr<backend::Backend> backend,
                     std::string token, lock::LeaseClock& lease, int wake_fd)
    : m_backend(std::move(backend)),
      m_token(std::move(token)),
      m_lease(lease),
      m_timing(lease.timing()),
      m_wake_fd(wake_fd) {}

Refresher::~Refresher() { stop(); }

void Refresher::start() {
  try {
    m_thread = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    // Without the thread nobody keeps the lease: the command must stop.
    declare_lost(
        fmt::format("cannot start the refresher thread: {}", e.what()));
    return;
  }
  if (m_backend->can_fail_over()) {
    start_listener();
  }
}

void Refresher::start_listener() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
    GODISLOCK_WARN(
        "cannot listen for failovers (pipe: {}); the lease is checked "
        "at each refresh only",
        std::strerror(errno));
    return;
  }
  m_stop_rd.reset(p[0]);
  m_stop_wr.reset(p[1]);
  m_listen_backend = m_backend->clone();
  try {
    m_listener = std::thread([this] { listen(); });
  } catch (const std::system_error& e) {
    GODISLOCK_WARN(
        "cannot listen for failovers ({}); the lease is checked at each "
        "refresh only",
        e.what());
  }
}

Clock::time_point Refresher::start_by() const {
  // A server that can fail over is watched from (nearly) the command's
  // start. Not at once, so that a short command does not pay for two
  // threads and a connection; nothing is missed meanwhile: the watch
  // begins by comparing the sentinel's master with the one in use.
  if (m_backend->can_fail_over()) {
    return m_lease.last_start() +
           std::min(m_timing.refresh_interval / 2, k_failover_watch_delay);
  }
  return m_lease.last_start() + m_timing.refresh_interval / 2;
}

void Refresher::request_stop() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_stop = true;
  }
  m_cv.notify_all();
  if (m_stop_wr.valid()) {
    char byte = 'S';
    [[maybe_unused]] ssize_t n = ::write(m_stop_wr.get(), &byte, 1);
  }
}

void Refresher::stop() {
  request_stop();
  if (m_thread.joinable()) {
    m_thread.join();
  }
  if (m_listener.joinable()) {
    m_listener.join();
  }
}

// Listens for failovers until stopped, on a connection it reopens when it
// breaks; each announcement wakes run() to verify the lease.
void Refresher::listen() {
  try {
    std::unique_ptr<backend::FailoverWatch> watch;
    Millis backoff{100};
    while (!is_stop_requested()) {
      if (!watch) {
        auto w = m_listen_backend->watch_failover(
            m_stop_rd.get(), Deadline::after(m_timing.refresh_interval));
        if (!w || !w.value()) {
          if (!w && w.error().kind != ErrorKind::interrupted) {
            GODISLOCK_DEBUG("cannot listen for failovers: {}",
                            w.error().message);
            std::unique_lock<std::mutex> lock(m_mutex);
            m_cv.wait_for(lock, backoff, [this] { return m_stop; });
            backoff = std::min(backoff * 2, Millis(2000));
            continue;
          }
          return;  // stopped, or nothing can fail over
        }
        watch = std::move(w.value());
        backoff = Millis(100);
      }
      auto r = watch->wait(Deadline::never());
      if (!r) {
        if (r.error().kind != ErrorKind::interrupted) {
          GODISLOCK_DEBUG("failover watch lost: {}", r.error().message);
        }
        watch.reset();
        continue;
      }
      if (!r->empty()) {
        GODISLOCK_DEBUG("{}; verifying the lease on the new master", *r);
        {
          std::lock_guard<std::mutex> lock(m_mutex);
          m_failover = *r;
          m_failover_pending = true;
        }
        m_cv.notify_all();
      }
    }
  } catch (const std::exception& e) {
    GODISLOCK_WARN("failover listener failed: {}", e.what());
  }
}

std::string Refresher::gone_reason(const std::string& failover) const {
  std::string what = failover.empty() ? m_backend->last_failover() : failover;
  if (what.empty()) {
    return "the lock key no longer holds our token "
           "(expired, deleted or taken over)";
  }
  return fmt::format(
      "the lock did not survive a failover ({}): the master now serving it "
      "does not hold our token",
      what);
}

bool Refresher::is_lost() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_lost;
}

std::string Refresher::lost_reason() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_lost_reason;
}

Clock::time_point Refresher::lost_at() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_lost_at;
}

std::string Refresher::last_error() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_last_error;
}

int Refresher::refreshes() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_refreshes;
}

bool Refresher::is_stop_requested() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_stop;
}

void Refresher::declare_lost(std::string reason) {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_lost = true;
    m_lost_reason = std::move(reason);
    m_lost_at = Clock::now();
  }
  char byte = 'L';
  // The pipe is non-blocking and has room; nothing to do if it fails.
  [[maybe_unused]] ssize_t n = ::write(m_wake_fd, &byte, 1);
}

bool Refresher::wait_turn(Clock::time_point until, std::string* failover) {
  std::unique_lock<std::mutex> lock(m_mutex);
  m_cv.wait_until(lock, until, [this] { return m_stop || m_failover_pending; });
  if (m_stop) {
    return false;
  }
  // After a failover the lease is verified at once, by a refresh on the
  // new master.
  *failover = m_failover_pending ? m_failover : std::string();
  m_failover_pending = false;
  return true;
}

bool Refresher::renewed(Clock::time_point started,
                        const std::string& failover) {
  if (!failover.empty()) {
    GODISLOCK_DEBUG("the lock survived the failover ({})", failover);
  }
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_stop) {
    return false;
  }
  m_lease.renewed(started);
  m_refreshes++;
  m_last_error.clear();
  return true;
}

bool Refresher::failed(const util::Result<bool>& r,
                       const std::string& failover) {
  if (is_stop_requested()) {
    return false;  // released meanwhile: the token is gone on purpose
  }
  if (r) {
    declare_lost(gone_reason(failover));
    return false;
  }
  if (r.error().kind == ErrorKind::foreign) {
    // No retry can help: the script extends nothing while the key is
    // there, so the lease lapses.
    declare_lost(
        fmt::format("{}; left alone, so the lease could not be extended",
                    r.error().message));
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_last_error = r.error().message;
  }
  GODISLOCK_DEBUG("refresh failed: {}", r.error().message);
  return true;
}

void Refresher::run() {
  // No exception may escape a thread (std::terminate would skip the release
  // and leave the child running): report any as a loss.
  try {
    Clock::time_point next = m_lease.last_start() + m_timing.refresh_interval;
    std::string last_error;
    std::string failover;  // being verified
    const Millis retry_delay =
        std::clamp(m_timing.refresh_interval / 4, Millis(5), Millis(1000));
    for (;;) {
      Clock::time_point give_up = m_lease.give_up_at();
      if (!wait_turn(std::min(next, give_up), &failover)) {
        return;
      }
      auto started = Clock::now();
      // Checked before refreshing: after a pause (SIGSTOP, suspend) longer
      // than the lease, a refresh could even succeed on a key that expired
      // and was re-created by nobody, but someone may have held it meanwhile.
      if (started >= give_up) {
        declare_lost(
            last_error.empty()
                ? fmt::format("no refresh succeeded for {} (process paused?)",
                              config::format_duration(
                                  std::chrono::duration_cast<Millis>(
                                      started - m_lease.last_start())))
                : fmt::format("could not refresh the lease in time: {}",
                              last_error));
        return;
      }
      auto r = m_backend->refresh(m_token, m_timing.ttl, Deadline::at(give_up));
      if (r && *r) {
        if (!renewed(started, failover)) {
          return;
        }
        next = started + m_timing.refresh_interval;
        last_error.clear();
        continue;
      }
      if (!failed(r, failover)) {
        return;
      }
      last_error = r.error().message;
      next = Clock::now() + retry_delay;
    }
  } catch (const std::exception& e) {
    declare_lost(fmt::format("refresher failed: {}", e.what()));
  }
}

}  // namespace godislock::refresher
