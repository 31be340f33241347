// SPDX-License-Identifier: MIT
#pragma once

#include "backend/backend.hpp"
#include "lock/validity.hpp"
#include "util/deadline.hpp"
#include "util/fd.hpp"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace godislock::refresher {

// Keeps a lease alive from a thread of its own, on a backend (connection) of
// its own. Every refresh_interval it extends the TTL and moves `lease` (the
// clock the supervisor enforces on its own) to the start of the refresh; it
// retries failures until the lease must be given up, and then reports the
// loss once by writing a byte to `wake_fd` (the supervisor polls it). Public
// methods are thread-safe; the destructor stops and joins the thread.
// `lease` must outlive the refresher.
//
// When the backend's server can fail over (Redis Sentinel), a second thread
// listens for failovers from (nearly) the command's start, on a connection of
// its own, and has the lease verified at once on the new master: a refresh
// there that finds the token gone is a loss, reported naming the failover.
class Refresher {
 public:
  Refresher(std::unique_ptr<backend::Backend> backend, std::string token,
            lock::LeaseClock& lease, int wake_fd);
  ~Refresher();
  Refresher(const Refresher&) = delete;
  Refresher& operator=(const Refresher&) = delete;

  // Starts the thread; if it cannot be created, reports the loss at once
  // (through wake_fd), as no refresh could keep the lease.
  void start();
  // When start() is due at the latest: half a refresh interval before the
  // first refresh, which leaves time to create the thread (its connection
  // opens on the first refresh). Starting later is still safe, since the
  // thread works from absolute times: it refreshes at once, or reports the
  // loss if the lease must already be given up. Until then no thread is
  // needed, and a short command never pays for one.
  util::Clock::time_point start_by() const;
  // Asks the thread to stop without waiting for it: a refresh under way
  // may still finish (harmless after a release, which checks the token).
  void request_stop();
  // Stops and joins the thread.
  void stop();

  // Whether the lease was given up, and why ("" while held).
  bool is_lost() const;
  std::string lost_reason() const;
  // When the loss was detected (valid only if is_lost()).
  util::Clock::time_point lost_at() const;
  int refreshes() const;
  // Why the latest refresh failed ("" when it succeeded or none ran).
  std::string last_error() const;

 private:
  void run();
  // Waits for the next refresh (`until`) or a failover to verify (its
  // description in `failover`); false once stop is requested.
  bool wait_turn(util::Clock::time_point until, std::string* failover);
  // Records a refresh that started at `started`; false once stop is
  // requested.
  bool renewed(util::Clock::time_point started, const std::string& failover);
  // A refresh that did not extend the lease: false when that ends the
  // refresher (the lease is lost, or stop was requested), true to retry.
  bool failed(const util::Result<bool>& r, const std::string& failover);
  void listen();
  bool is_stop_requested() const;
  void declare_lost(std::string reason);
  void start_listener();
  // Why the lease is lost when a refresh found the token gone.
  std::string gone_reason(const std::string& failover) const;

  std::unique_ptr<backend::Backend> m_backend;
  std::unique_ptr<backend::Backend> m_listen_backend;
  const std::string m_token;
  lock::LeaseClock& m_lease;
  const lock::LeaseTiming m_timing;
  const int m_wake_fd;

  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_stop = false;
  bool m_lost = false;
  std::string m_lost_reason;
  std::string m_last_error;
  util::Clock::time_point m_lost_at{};
  int m_refreshes = 0;
  // A failover was announced and the lease not verified since.
  bool m_failover_pending = false;
  std::string m_failover;
  std::thread m_thread;
  std::thread m_listener;
  // Readable once stop is requested: ends the listener's wait.
  util::Fd m_stop_rd, m_stop_wr;
};

}  // namespace godislock::refresher
