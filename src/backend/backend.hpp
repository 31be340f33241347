// SPDX-License-Identifier: MIT
#pragma once

#include "config/url.hpp"
#include "util/deadline.hpp"
#include "util/result.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace godislock::backend {

// --- Interface ---

using Millis = std::chrono::milliseconds;

// How long a queued waiter stays queued without coming back (the fallback
// liveness for a host that vanished without closing its connection; a
// waiter that died on a live host leaves at once, its subscription gone).
// Waiters come back at least every third of it.
constexpr Millis k_queue_lease{60000};

// How long a queued waiter found without a subscriber keeps its place: a
// live waiter whose connection dropped resubscribes within it, a killed one
// never does. A dead waiter delays the queue by at most this much.
constexpr Millis k_queue_grace{1000};

// What an acquisition came to: one enum from a single attempt (backend)
// through the wait (lock::acquire) to the exit code (app).
enum class Outcome {
  acquired,    // ours now (or already ours after a lost reply)
  held,        // attempt: another token holds it for holder_ttl more
  queued,      // attempt: free, but an earlier waiter goes first (fair)
  timed_out,   // wait: still held when --wait ran out (or -n)
  no_expiry,   // a key without TTL holds it: foreign or stale, left alone
  wrong_type,  // a key of the lock is not of godislock's type, left alone
  mismatch,    // the lock is in use as another kind (exclusive, ...)
};

// What one acquisition attempt found.
struct Attempt {
  Outcome state = Outcome::held;
  uint64_t fence = 0;    // acquired: the fencing token, strictly rising
  unsigned slot = 0;     // acquired: 1..limit, or 0 for a shared hold
  Millis holder_ttl{0};  // held: time until a place may free up by expiry
  // queued: when the waiter ahead, found without a subscriber, loses its
  // place unless it comes back (nullopt: it is subscribed).
  std::optional<Millis> head_lapses;
  // held: who is in the way (one of them), when the server knows; queued:
  // > 0 when a holder is ahead of the queue (etcd), 0 when the lock is free
  // and an earlier waiter goes first (Redis).
  unsigned holders = 0;
  std::string holder_host, holder_pid, holder_cmd;
  std::optional<Millis> holder_age;
  // wrong_type: the key's type and name; mismatch: the shape in use, as
  // "exclusive", "shared" or "limit:N".
  std::string detail;
  std::string detail_key;
};

// Who takes a lock, stored beside it while held (for status and waiters).
struct Holder {
  std::string host;
  std::string pid;
  std::string user;
  std::string command;  // the command line, at most k_holder_cmd_cap bytes
};
constexpr size_t k_holder_cmd_cap = 256;

// One hold of a lock, as `status` sees it.
struct HolderInfo {
  Holder who;                     // empty when the record is missing
  Millis ttl{0};                  // time left on the hold's lease
  std::optional<Millis> age;      // how long it has been held
  std::optional<uint64_t> fence;  // the hold's fencing token
  unsigned slot = 0;              // 1..limit, 0 when shared
};

// What a lock looks like at one instant.
struct LockStatus {
  enum class Kind { free, exclusive, counted, shared, foreign };
  Kind kind = Kind::free;
  unsigned limit = 1;       // counted: N
  uint64_t last_fence = 0;  // the last fence issued (0: none known)
  unsigned queued = 0;      // tokens in the FIFO queue
  std::vector<HolderInfo> holders;
  // foreign: what is wrong ("no-ttl", or the key's type) and with which key
  std::string foreign_detail;
  std::string foreign_key;
};

// What a wait on a ReleaseWatch brought.
struct Wakeup {
  bool arrived = false;  // false: `until` came first
  // The lock was handed straight to this waiter by its releaser: it holds
  // it now with this fence (slot 1, exclusive), and its lease counts from
  // the start of its latest attempt, which the hand-over is known to have
  // followed. Only ever set for a fair watch.
  std::optional<uint64_t> granted_fence;
  explicit operator bool() const { return arrived; }
};

// Announcements that a lock was released (or handed to us), on a
// connection of its own. Not thread-safe.
class ReleaseWatch {
 public:
  virtual ~ReleaseWatch() = default;
  // Waits for an announcement or `until`. An error means the subscription
  // is gone (the caller opens a new watch) or a signal interrupted the wait.
  virtual util::Result<Wakeup> wait(util::Deadline until) = 0;
};

// Tells when the server a lock lives on was replaced (a Redis Sentinel
// failover), on a connection of its own. Not thread-safe.
class FailoverWatch {
 public:
  virtual ~FailoverWatch() = default;
  // Waits for a failover signal or `until`: what happened, for messages,
  // or "" when `until` came first. An error means the watch is gone (the
  // caller opens a new one) or `interrupt_fd` (see watch_failover) became
  // readable.
  virtual util::Result<std::string> wait(util::Deadline until) = 0;
};

// The lock protocol of one store. Each method is one atomic step on the
// server. An instance owns one connection and reconnects on the next call
// after a failure; it is not thread-safe (give each thread its own).
class Backend {
 public:
  virtual ~Backend() = default;

  // How an attempt treats the FIFO queue of waiters.
  enum class Mode {
    race,   // ignore the queue: whoever comes first (--no-fair)
    try_,   // respect the queue, but do not join it (a first, single try)
    queue,  // respect the queue and join it (or stay in it) when not taken
  };
  // In queue mode a release may later hand the lock straight to the
  // waiter; the token's watch reports that (Wakeup::granted_fence) only
  // when it answers this backend's latest queue-mode attempt, so that
  // the lease may count from that attempt's start.
  virtual util::Result<Attempt> acquire(const std::string& token, Millis ttl,
                                        Mode mode, util::Deadline deadline) = 0;
  // True when the lease was extended, false when it is not ours any more.
  // ErrorKind::foreign when a key of the lock holds a type godislock never
  // gives it: nothing was extended (the lease lapses with its TTL).
  virtual util::Result<bool> refresh(const std::string& token, Millis ttl,
                                     util::Deadline deadline) = 0;
  // True when it was ours and is now released: handed straight to the
  // next fair waiter of an exclusive lock (see Wakeup), or the next waiter
  // woken. Either way the token leaves the queue. ErrorKind::foreign when
  // a key of the lock holds a type godislock never gives it: nothing was
  // written, not even the hold released (it lapses with its TTL).
  virtual util::Result<bool> release(const std::string& token,
                                     util::Deadline deadline) = 0;
  // Subscribes on a new connection and returns once the subscription is
  // confirmed, so that no release after this call can be missed: to the
  // token's own wake-up channel (fair mode: being subscribed there is also
  // what keeps the token's place in the queue), or to every release
  // (race mode).
  virtual util::Result<std::unique_ptr<ReleaseWatch>> watch(
      const std::string& token, bool fair, util::Deadline deadline) = 0;
  // Makes blocking calls on this backend (and its watches) fail with
  // ErrorKind::interrupted while `fd` is readable (-1: never).
  virtual void set_interrupt_fd(int fd) = 0;
  // A new, independent backend for the same lock (e.g. for another thread).
  // It connects on its first call, so that creating it costs nothing, and
  // to the addresses this one found: it never resolves the name again.
  virtual std::unique_ptr<Backend> clone() const = 0;
  // What lock `name` (under the same prefix) looks like now, in one atomic
  // look.
  virtual util::Result<LockStatus> status(const std::string& name,
                                          util::Deadline deadline) = 0;
  // Ends every hold of the lock at once (their holders find out at their
  // next refresh) and wakes its waiters; returns what was held. Keys that
  // godislock did not make are never touched (the result is `foreign`).
  virtual util::Result<LockStatus> break_lock(util::Deadline deadline) = 0;
  // The names of all locks with keys under the prefix (the settings' name
  // is not used), sorted. Walks the key space with SCAN, never KEYS.
  virtual util::Result<std::vector<std::string>> list_names(
      util::Deadline deadline) = 0;
  // Where the lock lives, safe to print (no password).
  virtual std::string describe() const = 0;

  // Whether the server can be replaced under a holder (a Redis Sentinel
  // failover): then a holder watches for that from its command's start.
  virtual bool can_fail_over() const { return false; }
  // A watch on failovers, on a new connection; its waits end with
  // ErrorKind::interrupted while `interrupt_fd` is readable. Null when the
  // server cannot fail over.
  virtual util::Result<std::unique_ptr<FailoverWatch>> watch_failover(
      int /*interrupt_fd*/, util::Deadline /*deadline*/) {
    return std::unique_ptr<FailoverWatch>();
  }
  // The latest failover this process noticed, for messages ("" when none).
  virtual std::string last_failover() const { return std::string(); }
};

// How to reach a lock.
struct Settings {
  config::Endpoint endpoint;
  std::string prefix = "godislock:";
  std::string name;
  // The lock's shape, the same for everybody using it: up to `limit`
  // holders at once (1: exclusive), or shared holders that may overlap each
  // other but never an exclusive one.
  unsigned limit = 1;
  bool shared = false;
  Holder holder;
  // --replicas N: each acquisition and refresh counts only once N replicas
  // acknowledged it (WAIT N, within replica_timeout).
  unsigned replicas = 0;
  Millis replica_timeout{1000};
};

// Largest --limit: each attempt on a counted lock looks at every slot.
constexpr unsigned k_max_limit = 1000;

// Connects a backend for the settings' URL scheme (redis:// and unix://
// today). The host is resolved here, once, within `deadline`; the backend,
// its watches and its clones connect and reconnect to those addresses.
// Errors as redis::resolve and redis::Connection::open.
util::Result<std::unique_ptr<Backend>> open(const Settings& settings,
                                            util::Deadline deadline);

}  // namespace godislock::backend
