// SPDX-License-Identifier: MIT
// The lock on etcd: etcd's own recipe (clientv3/concurrency.Mutex), made to
// fit godislock's waiting, lease and supervision.
//
// - A run grants a lease with TTL = --ttl rounded up to whole seconds (etcd
//   counts leases in seconds; the server keeping the key a little longer
//   than --ttl is safe, because the command is stopped on godislock's own
//   clock, from --ttl) and puts its key PREFIX NAME/<lease hex> with that
//   lease, in a txn guarded by "create revision == 0".
// - The holder is the key with the lowest create revision under the
//   lock's prefix; the others queue behind it in create-revision order.
//   The fence is the holder's create revision: the cluster's revision
//   counter only rises, and every key older than the holder's is gone.
// - A waiter watches the DELETE of the key just ahead of it, from the
//   revision its last look was made at (nothing is missed between the look
//   and the watch), keeps its lease alive meanwhile on the member its
//   stream is on (which checks that member: EtcdWatch::check), and looks
//   again on every event, cancellation or compaction.
// - Every queued attempt renews the lease before it looks (keep-alive,
//   then a read-only txn), so a lock granted to us is known to have a live
//   lease counted from after the attempt's start; a key whose lease lapsed
//   is gone by then (etcd issue 9921: a Mutex could be granted after its
//   session expired).
// - Refresh: keep-alive, then the key must still exist (a deleted key is a
//   lost lock even while the lease lives). Release: delete the key if it is
//   still ours (one txn), then revoke the lease.
#include "backend/etcd_backend.hpp"

#include "etcd/client.hpp"
#include "util/log.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <mutex>
#include <utility>

namespace godislock::backend {

using etcd::Compare;
using etcd::KeyValue;
using etcd::RangeRequest;
using etcd::RangeResponse;
using etcd::SortOrder;
using etcd::SortTarget;
using util::Deadline;
using util::Error;
using util::ErrorKind;
using util::Result;

namespace {

// One attempt on one member before the next is tried: a member that
// accepts connections but never answers (stopped, cut off) must leave
// time for the others within the call's deadline. Once the TTL is known,
// a sixth of it (a refresh has a third of the TTL and more to succeed),
// between 200 ms and this.
constexpr Millis k_attempt_timeout{1000};

Millis attempt_timeout_for(Millis ttl) {
  return std::clamp(ttl / 6, Millis(200), k_attempt_timeout);
}

std::string hex(int64_t id) {
  return fmt::format("{:x}", static_cast<uint64_t>(id));
}

std::chrono::seconds lease_seconds(Millis ttl) {
  auto s = std::chrono::ceil<std::chrono::seconds>(ttl);
  return std::max(s, std::chrono::seconds(1));
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<Millis>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What is stored in our key: who holds (or waits), for status and waiters.
std::string holder_value(const Holder& h) {
  nlohmann::json j = {{"host", h.host},
                      {"pid", h.pid},
                      {"user", h.user},
                      {"cmd", h.command},
                      {"since", unix_ms_now()}};
  // Invalid UTF-8 (a command line is bytes) is replaced, not refused.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The holder record in a key's value; empty fields for a value that is not
// godislock's (a key put there by hand or by etcdctl).
struct Record {
  Holder who;
  std::optional<Millis> age;
};

Record parse_record(const std::string& value) {
  Record r;
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (!j.is_object()) {
    return r;
  }
  auto text = [&j](const char* name) {
    auto it = j.find(name);
    return it != j.end() && it->is_string() ? it->get<std::string>()
                                            : std::string();
  };
  r.who.host = text("host");
  r.who.pid = text("pid");
  r.who.user = text("user");
  r.who.command = text("cmd");
  if (auto it = j.find("since"); it != j.end() && it->is_number_integer()) {
    r.age = Millis(std::max<int64_t>(0, unix_ms_now() - it->get<int64_t>()));
  }
  return r;
}

void describe_holder(const KeyValue& kv, size_t holders, Attempt* a) {
  Record r = parse_record(kv.value);
  a->holders = static_cast<unsigned>(holders);
  a->holder_host = r.who.host;
  a->holder_pid = r.who.pid;
  a->holder_cmd = r.who.command;
  a->holder_age = r.age;
}

RangeRequest whole_prefix(const std::string& prefix) {
  RangeRequest r;
  r.key = prefix;
  r.range_end = etcd::prefix_end(prefix);
  return r;
}

// The oldest key under the prefix: the holder.
RangeRequest oldest(const std::string& prefix) {
  RangeRequest r = whole_prefix(prefix);
  r.sort_order = SortOrder::ascend;
  r.sort_target = SortTarget::create;
  r.limit = 1;
  return r;
}

// The newest key under the prefix created before `revision` (or the newest
// two of all with revision 0: ours, just put, and the one ahead of it).
RangeRequest newest_before(const std::string& prefix, int64_t revision) {
  RangeRequest r = whole_prefix(prefix);
  r.sort_order = SortOrder::descend;
  r.sort_target = SortTarget::create;
  r.keys_only = true;
  if (revision > 0) {
    r.max_create_revision = revision - 1;
    r.limit = 1;
  } else {
    r.limit = 2;
  }
  return r;
}

const RangeResponse& range_at(const etcd::TxnResponse& t, size_t i) {
  return std::get<RangeResponse>(t.responses.at(i));
}

bool lease_not_found(const Error& e) {
  return e.message.find("lease not found") != std::string::npos;
}

// What the backend, its clones and its watches share: our lease and key,
// and (main thread only) what a waiter watches. The refresher's clone runs
// on another thread, hence the mutex.
struct Shared {
  std::mutex mutex;
  int64_t lease = 0;            // 0: none granted
  std::string key;              // ours, while the lease lives
  int64_t create_revision = 0;  // of our key, once known
  Millis ttl{0};
  // The waiter's watch: this key (or range) for DELETEs after `revision`.
  std::string watch_key, watch_end;
  int64_t watch_revision = 0;
  bool keep_alive_while_waiting = false;

  void forget_lease() {
    lease = 0;
    key.clear();
    create_revision = 0;
  }
};

// How often a waiter checks that the member its watch stream is on still
// serves it: a stopped member (SIGSTOP, a hung host) keeps its connections
// open and simply sends nothing, and a member cut off from its peers
// (network partition) answers but sees no new write, so a silent stream
// cannot be told from a quiet lock by the stream alone (etcd's gateway
// sends progress notifications only at the server's --experimental-watch-
// progress-notify-interval, 10 minutes by default). A third of the TTL,
// as the queued waiter's lease renewal that is the check; at most this.
constexpr Millis k_watch_check_max{5000};

Millis watch_check_interval(Millis ttl) {
  return std::clamp(ttl / 3, Millis(100), k_watch_check_max);
}

// The member did not serve a call (unreachable, stopped, cut off from its
// leader, no leader), as opposed to answering it.
bool member_failed(const Error& e) {
  return e.kind == ErrorKind::io || e.kind == ErrorKind::timeout ||
         e.kind == ErrorKind::busy;
}

class EtcdWatch final : public ReleaseWatch {
 public:
  EtcdWatch(std::shared_ptr<Shared> shared, etcd::Client* client)
      : m_shared(std::move(shared)), m_client(client) {}

  Result<Wakeup> wait(Deadline until) override;

 private:
  util::Status open(Deadline until);
  Result<bool> check(Millis interval);
  Result<bool> keep_alive(int64_t lease, Deadline until);
  void drop_stream(const Error& why);

  std::shared_ptr<Shared> m_shared;
  etcd::Client* m_client;
  std::optional<etcd::Watch> m_stream;
  std::string m_key;
  int64_t m_revision = 0;
  util::Clock::time_point m_last_check = util::Clock::now();
};

// Opens the stream on what the latest attempt said to watch, unless it is
// open on that already.
util::Status EtcdWatch::open(Deadline until) {
  std::string key, end;
  int64_t revision = 0;
  {
    std::lock_guard<std::mutex> lock(m_shared->mutex);
    key = m_shared->watch_key;
    end = m_shared->watch_end;
    revision = m_shared->watch_revision;
  }
  if (m_stream && key == m_key && revision == m_revision) {
    return util::ok_status();
  }
  m_stream.reset();
  etcd::WatchRequest req;
  req.key = key;
  req.range_end = end;
  req.start_revision = revision + 1;
  req.no_put = true;
  auto w = m_client->watch(req, until.min(Deadline::after(k_attempt_timeout)));
  if (!w) {
    return w.error();
  }
  m_stream.emplace(std::move(*w));
  m_key = key;
  m_revision = revision;
  GODISLOCK_DEBUG("watching {} for its deletion on etcd {}", key,
                  m_stream->endpoint());
  return util::ok_status();
}

// Renews a queued waiter's lease; false when it is gone.
Result<bool> EtcdWatch::keep_alive(int64_t lease, Deadline until) {
  auto r = m_client->lease_keep_alive(lease, until);
  if (!r) {
    return r.error();
  }
  return r->ttl_s > 0;
}

// One request per interval, bounded by the attempt timeout (a sixth of the
// TTL). A queued waiter renews its lease on the stream's own member: a
// follower forwards a keep-alive to its leader, so a member that is
// stopped, cut off from its peers or without a leader fails it. Then the
// stream is closed, to be opened again from the same revision on a member
// that answers (nothing is missed), and the lease is renewed through the
// usual fail-over. A waiter with no lease to renew is one that does not
// queue (--no-fair: it watches the whole prefix and owns no key); it asks
// the stream's member for its status, which a stopped member fails (the
// member answers it alone, so an election does not), and relies on the
// stream's leader requirement for a member cut off from its peers. False:
// our waiting lease is gone.
Result<bool> EtcdWatch::check(Millis interval) {
  int64_t lease = 0;
  {
    std::lock_guard<std::mutex> lock(m_shared->mutex);
    lease = m_shared->keep_alive_while_waiting ? m_shared->lease : 0;
  }
  auto bound = [interval] {
    return Deadline::after(std::min(interval, k_attempt_timeout * 2));
  };
  m_last_check = util::Clock::now();
  if (lease == 0) {
    if (m_stream) {
      auto st = m_client->status_at(m_stream->endpoint(), bound());
      if (!st) {
        drop_stream(st.error());
      }
    }
    return true;
  }
  if (m_stream) {
    auto k =
        m_client->lease_keep_alive_at(m_stream->endpoint(), lease, bound());
    if (k) {
      m_last_check = util::Clock::now();
      return k->ttl_s > 0;
    }
    if (!member_failed(k.error())) {
      return k.error();
    }
    drop_stream(k.error());
  }
  auto alive = keep_alive(lease, bound());
  m_last_check = util::Clock::now();
  return alive;
}

void EtcdWatch::drop_stream(const Error& why) {
  GODISLOCK_DEBUG("etcd {} did not serve us ({}); watching elsewhere",
                  m_stream->endpoint(), why.message);
  m_stream.reset();
}

Result<Wakeup> EtcdWatch::wait(Deadline until) {
  Millis interval{0};
  {
    std::lock_guard<std::mutex> lock(m_shared->mutex);
    interval = watch_check_interval(m_shared->ttl);
  }
  for (;;) {
    if (util::Clock::now() >= m_last_check + interval) {
      auto alive = check(interval);
      if (!alive) {
        return alive.error();
      }
      if (!*alive) {
        GODISLOCK_DEBUG("our waiting lease is gone; looking again");
        return Wakeup{true, std::nullopt};
      }
    }
    GODISLOCK_TRY(open(until));
    Deadline slice = until.min(Deadline::at(m_last_check + interval));
    auto r = m_stream->next(slice);
    if (!r) {
      if (r.error().kind != ErrorKind::timeout) {
        m_stream.reset();
        return r.error();
      }
      if (until.expired()) {
        return Wakeup{false, std::nullopt};
      }
      continue;  // time for the check
    }
    if (r->canceled || r->compact_revision > 0) {
      // Events may have been lost: look again.
      GODISLOCK_DEBUG(
          "watch canceled ({}); looking again",
          r->cancel_reason.empty() ? "compacted" : r->cancel_reason);
      m_stream.reset();
      return Wakeup{true, std::nullopt};
    }
    if (!r->events.empty()) {
      return Wakeup{true, std::nullopt};
    }
  }
}

class EtcdBackend final : public Backend {
 public:
  EtcdBackend(Settings settings, etcd::ClientOptions options,
              etcd::Client client, std::shared_ptr<Shared> shared)
      : m_settings(std::move(settings)),
        m_options(std::move(options)),
        m_client(std::move(client)),
        m_shared(std::move(shared)),
        m_prefix(etcd_lock_prefix(m_settings.prefix, m_settings.name)) {}

  Result<Attempt> acquire(const std::string& token, Millis ttl, Mode mode,
                          Deadline deadline) override;
  Result<bool> refresh(const std::string& token, Millis ttl,
                       Deadline deadline) override;
  Result<bool> release(const std::string& token, Deadline deadline) override;
  Result<std::unique_ptr<ReleaseWatch>> watch(const std::string& token,
                                              bool fair,
                                              Deadline deadline) override;
  void set_interrupt_fd(int fd) override {
    m_options.interrupt_fd = fd;
    m_client.set_interrupt_fd(fd);
  }
  std::unique_ptr<Backend> clone() const override;
  Result<LockStatus> status(const std::string& name,
                            Deadline deadline) override;
  Result<LockStatus> break_lock(Deadline deadline) override;
  Result<std::vector<std::string>> list_names(Deadline deadline) override;
  std::string describe() const override {
    return m_settings.endpoint.redacted();
  }
  // What open_etcd() saw of the lock (its oldest key), for the first try.
  void keep_opening_look(RangeResponse look) {
    m_opening_look = std::move(look);
  }

 private:
  Result<std::optional<Attempt>> look_first(Deadline deadline);
  util::Status ensure_lease(Millis ttl, Deadline deadline);
  Result<etcd::TxnResponse> put_or_look(Deadline deadline);
  Result<etcd::TxnResponse> look_again(int64_t known, Deadline deadline);
  Result<Attempt> judge(const etcd::TxnResponse& t, bool created, Mode mode,
                        Deadline deadline);
  Result<LockStatus> status_of(const std::vector<KeyValue>& kvs,
                               Deadline deadline);

  // The opening look of open_etcd(), until a first try uses it.
  std::optional<RangeResponse> m_opening_look;
  Settings m_settings;
  etcd::ClientOptions m_options;
  etcd::Client m_client;
  std::shared_ptr<Shared> m_shared;
  std::string m_prefix;  // of this lock's keys, ending in '/'
};

// A try that will not queue first looks whether anyone holds or waits: a
// held lock then costs one read, and no lease.
Result<std::optional<Attempt>> EtcdBackend::look_first(Deadline deadline) {
  // The look open_etcd() made serves the first try: it was made just
  // before, and a lock seen held then was held while we tried.
  std::optional<RangeResponse> got = std::move(m_opening_look);
  m_opening_look.reset();
  if (!got) {
    auto r = m_client.range(oldest(m_prefix), deadline);
    if (!r) {
      return r.error();
    }
    got = std::move(*r);
  }
  if (got->kvs.empty()) {
    return std::optional<Attempt>();
  }
  Attempt a;
  a.state = Outcome::held;
  // Unknown without another request; the watch reports the deletion
  // sooner anyway (expiry deletes the key).
  a.holder_ttl = k_queue_lease / 3;
  describe_holder(got->kvs.front(), 1, &a);  // the others are waiters
  std::lock_guard<std::mutex> lock(m_shared->mutex);
  m_shared->watch_key = m_prefix;
  m_shared->watch_end = etcd::prefix_end(m_prefix);
  m_shared->watch_revision = got->header.revision;
  return std::optional<Attempt>(a);
}

// Grants our lease, or renews it; a lease found gone (expired, revoked)
// took our key with it and is replaced.
util::Status EtcdBackend::ensure_lease(Millis ttl, Deadline deadline) {
  int64_t lease = 0;
  {
    std::lock_guard<std::mutex> lock(m_shared->mutex);
    m_shared->ttl = ttl;
    lease = m_shared->lease;
  }
  if (lease != 0) {
    auto k = m_client.lease_keep_alive(lease, deadline);
    if (!k) {
      return k.error();
    }
    if (k->ttl_s > 0) {
      return util::ok_status();
    }
    GODISLOCK_DEBUG("lease {} is gone; granting a new one", hex(lease));
  }
  auto g = m_client.lease_grant(lease_seconds(ttl), deadline);
  if (!g) {
    return g.error();
  }
  std::lock_guard<std::mutex> lock(m_shared->mutex);
  m_shared->lease = g->id;
  m_shared->key = m_prefix + hex(g->id);
  m_shared->create_revision = 0;
  return util::ok_status();
}

// Puts our key unless it exists, and looks at the queue in the same txn:
// [0] the holder, [1] ours and the key ahead of it (put) or the key ahead
// of our known revision (found), [2] our key (found).
Result<etcd::TxnResponse> EtcdBackend::put_or_look(Deadline deadline) {
  std::string key;
  int64_t lease = 0, known = 0;
  {
    std::lock_guard<std::mutex> lock(m_shared->mutex);
    key = m_shared->key;
    lease = m_shared->lease;
    known = m_shared->create_revision;
  }
  etcd::TxnRequest t;
  t.compare.push_back(Compare::create_revision(key, Compare::Result::equal, 0));
  etcd::PutRequest put;
  put.key = key;
  put.value = holder_value(m_settings.holder);
  put.lease = lease;
  t.success = {put, oldest(m_prefix), newest_before(m_prefix, 0)};
  RangeRequest mine;
  mine.key = key;
  t.failure = {oldest(m_prefix), newest_before(m_prefix, known), mine};
  return m_client.txn(t, deadline);
}

// Our key at the revision we know, and the queue, in a read-only txn (no
// write through Raft, so a woken waiter's look is as cheap as a read):
// [0] the holder, [1] the key ahead of ours, [2] our key. Not succeeded:
// our key is gone (its lease ended, or it was deleted).
Result<etcd::TxnResponse> EtcdBackend::look_again(int64_t known,
                                                  Deadline deadline) {
  std::string key;
  {
    std::lock_guard<std::mutex> lock(m_shared->mutex);
    key = m_shared->key;
  }
  etcd::TxnRequest t;
  t.compare.push_back(
      Compare::create_revision(key, Compare::Result::equal, known));
  RangeRequest mine;
  mine.key = key;
  t.success = {oldest(m_prefix), newest_before(m_prefix, known), mine};
  return m_client.txn(t, deadline);
}

// Holder, queued or (not queuing) gone again, from the answer of
// put_or_look (`created`: it put our key) or look_again.
Result<Attempt> EtcdBackend::judge(const etcd::TxnResponse& t, bool created,
                                   Mode mode, Deadline deadline) {
  size_t base = created ? 1 : 0;
  const RangeResponse& head = range_at(t, base);
  const RangeResponse& before = range_at(t, base + 1);
  int64_t mine = t.header.revision;
  if (!created) {
    const RangeResponse& own = range_at(t, 2);
    if (own.kvs.empty()) {
      return Error{ErrorKind::protocol, "etcd: our key vanished inside a txn"};
    }
    mine = own.kvs.front().create_revision;
  }
  std::string key;
  {
    std::lock_guard<std::mutex> lock(m_shared->mutex);
    m_shared->create_revision = mine;
    key = m_shared->key;
  }
  Attempt a;
  if (!head.kvs.empty() && head.kvs.front().create_revision == mine) {
    a.state = Outcome::acquired;
    a.fence = static_cast<uint64_t>(mine);
    a.slot = 1;
    return a;
  }
  if (!head.kvs.empty()) {
    describe_holder(head.kvs.front(), 1, &a);
  }
  if (mode != Mode::queue) {
    // Lost a race for a free lock: leave no trace.
    auto st = release(std::string(), deadline);
    if (!st) {
      return st.error();
    }
    a.state = Outcome::held;
    a.holder_ttl = k_queue_lease / 3;
    std::lock_guard<std::mutex> lock(m_shared->mutex);
    m_shared->watch_key = m_prefix;
    m_shared->watch_end = etcd::prefix_end(m_prefix);
    m_shared->watch_revision = t.header.revision;
    return a;
  }
  // The key just ahead of ours: the newest one older than ours.
  std::string ahead;
  for (const auto& kv : before.kvs) {
    if (kv.create_revision < mine) {
      ahead = kv.key;
      break;
    }
  }
  int64_t revision = t.header.revision;
  if (ahead.empty()) {
    // Our revision was not known when the txn was sent (a lost reply
    // created the key): ask for the key ahead now.
    auto r = m_client.range(newest_before(m_prefix, mine), deadline);
    if (!r) {
      return r.error();
    }
    if (r->kvs.empty()) {
      return Error{ErrorKind::io, "etcd: the queue moved; looking again"};
    }
    ahead = r->kvs.front().key;
    revision = r->header.revision;
  }
  a.state = Outcome::queued;
  std::lock_guard<std::mutex> lock(m_shared->mutex);
  m_shared->watch_key = ahead;
  m_shared->watch_end.clear();
  m_shared->watch_revision = revision;
  m_shared->keep_alive_while_waiting = true;
  return a;
}

Result<Attempt> EtcdBackend::acquire(const std::string& /*token*/, Millis ttl,
                                     Mode mode, Deadline deadline) {
  m_client.set_attempt_timeout(attempt_timeout_for(ttl));
  bool have_key = false;
  {
    std::lock_guard<std::mutex> lock(m_shared->mutex);
    have_key = m_shared->create_revision != 0;
    m_shared->ttl = ttl;
  }
  if (mode != Mode::queue && !have_key) {
    auto seen = look_first(deadline);
    if (!seen) {
      return seen.error();
    }
    if (*seen) {
      return **seen;
    }
  }
  for (int round = 0;; ++round) {
    GODISLOCK_TRY(ensure_lease(ttl, deadline));
    int64_t known = 0;
    {
      std::lock_guard<std::mutex> lock(m_shared->mutex);
      known = m_shared->create_revision;
    }
    if (known != 0) {
      auto t = look_again(known, deadline);
      if (!t) {
        return t.error();
      }
      if (t->succeeded) {
        return judge(*t, false, mode, deadline);
      }
      GODISLOCK_DEBUG("our key is gone; queuing again");
      std::lock_guard<std::mutex> lock(m_shared->mutex);
      m_shared->create_revision = 0;
    }
    auto t = put_or_look(deadline);
    if (!t && lease_not_found(t.error()) && round == 0) {
      // Revoked between the keep-alive and the txn: start afresh.
      std::lock_guard<std::mutex> lock(m_shared->mutex);
      m_shared->forget_lease();
      continue;
    }
    if (!t) {
      return t.error();
    }
    return judge(*t, t->succeeded, mode, deadline);
  }
}

Result<bool> EtcdBackend::refresh(const std::string& /*token*/, Millis ttl,
                                  Deadline deadline) {
  m_client.set_attempt_timeout(attempt_timeout_for(ttl));
  int64_t lease = 0;
  std::string key;
  {
    std::lock_guard<std::mutex> lock(m_shared->mutex);
    lease = m_shared->lease;
    key = m_shared->key;
  }
  if (lease == 0) {
    return false;
  }
  auto k = m_client.lease_keep_alive(lease, deadline);
  if (!k) {
    return k.error();
  }
  if (k->ttl_s <= 0) {
    return false;
  }
  RangeRequest r;
  r.key = key;
  r.count_only = true;
  auto got = m_client.range(r, deadline);
  if (!got) {
    return got.error();
  }
  return got->count > 0;
}

Result<bool> EtcdBackend::release(const std::string& /*token*/,
                                  Deadline deadline) {
  int64_t lease = 0, revision = 0;
  std::string key;
  {
    std::lock_guard<std::mutex> lock(m_shared->mutex);
    lease = m_shared->lease;
    key = m_shared->key;
    revision = m_shared->create_revision;
  }
  if (lease == 0) {
    return false;
  }
  // Deleted first and on its own, so that the waiter behind wakes at once;
  // "ours" is the key of our lease (only we write it), at the revision we
  // know when we know it.
  etcd::TxnRequest t;
  t.compare.push_back(
      revision != 0
          ? Compare::create_revision(key, Compare::Result::equal, revision)
          : Compare::create_revision(key, Compare::Result::greater, 0));
  etcd::DeleteRangeRequest del;
  del.key = key;
  t.success = {del};
  auto d = m_client.txn(t, deadline);
  if (!d) {
    return d.error();
  }
  auto revoked = m_client.lease_revoke(lease, deadline);
  if (!revoked && !lease_not_found(revoked.error())) {
    // The key is gone, which is what matters; the lease ends with its TTL.
    GODISLOCK_DEBUG("could not revoke lease {}: {}", hex(lease),
                    revoked.error().message);
  }
  std::lock_guard<std::mutex> lock(m_shared->mutex);
  m_shared->forget_lease();
  m_shared->keep_alive_while_waiting = false;
  return d->succeeded;
}

Result<std::unique_ptr<ReleaseWatch>> EtcdBackend::watch(
    const std::string& /*token*/, bool /*fair*/, Deadline /*deadline*/) {
  // Nothing to open yet: the stream starts from the revision of the
  // attempt that follows, so nothing after that attempt can be missed.
  return std::unique_ptr<ReleaseWatch>(
      std::make_unique<EtcdWatch>(m_shared, &m_client));
}

std::unique_ptr<Backend> EtcdBackend::clone() const {
  // create() can fail only on what open_etcd() already checked with the
  // same options (the endpoints, libcurl); value() would throw otherwise.
  // A clone serves another thread: it is not cut short by this one's
  // interrupt fd (the signalfd belongs to the main thread).
  etcd::ClientOptions options = m_options;
  options.interrupt_fd = -1;
  auto client = etcd::Client::create(options);
  return std::make_unique<EtcdBackend>(m_settings, options,
                                       std::move(client.value()), m_shared);
}

Result<LockStatus> EtcdBackend::status_of(const std::vector<KeyValue>& kvs,
                                          Deadline deadline) {
  LockStatus st;
  if (kvs.empty()) {
    return st;
  }
  const KeyValue& head = kvs.front();
  if (head.lease == 0) {
    st.kind = LockStatus::Kind::foreign;
    st.foreign_detail = "no-ttl";
    st.foreign_key = head.key;
    return st;
  }
  st.kind = LockStatus::Kind::exclusive;
  st.queued = static_cast<unsigned>(kvs.size() - 1);
  st.last_fence = static_cast<uint64_t>(head.create_revision);
  HolderInfo h;
  Record r = parse_record(head.value);
  h.who = r.who;
  h.age = r.age;
  h.fence = static_cast<uint64_t>(head.create_revision);
  h.slot = 1;
  auto ttl = m_client.lease_time_to_live(head.lease, false, deadline);
  if (!ttl) {
    return ttl.error();
  }
  h.ttl = Millis(std::max<int64_t>(0, ttl->ttl_s) * 1000);
  st.holders.push_back(std::move(h));
  return st;
}

Result<LockStatus> EtcdBackend::status(const std::string& name,
                                       Deadline deadline) {
  RangeRequest r = whole_prefix(etcd_lock_prefix(m_settings.prefix, name));
  r.sort_order = SortOrder::ascend;
  r.sort_target = SortTarget::create;
  auto got = m_client.range(r, deadline);
  if (!got) {
    return got.error();
  }
  return status_of(got->kvs, deadline);
}

Result<LockStatus> EtcdBackend::break_lock(Deadline deadline) {
  // One txn: what was there, then all of it deleted. Holders find their
  // key gone at their next refresh; waiters wake on the deletions.
  RangeRequest r = whole_prefix(m_prefix);
  r.sort_order = SortOrder::ascend;
  r.sort_target = SortTarget::create;
  etcd::DeleteRangeRequest del;
  del.key = m_prefix;
  del.range_end = etcd::prefix_end(m_prefix);
  etcd::TxnRequest t;
  t.success = {r, del};
  auto done = m_client.txn(t, deadline);
  if (!done) {
    return done.error();
  }
  return status_of(range_at(*done, 0).kvs, deadline);
}

Result<std::vector<std::string>> EtcdBackend::list_names(Deadline deadline) {
  RangeRequest r = whole_prefix(m_settings.prefix);
  r.keys_only = true;
  auto got = m_client.range(r, deadline);
  if (!got) {
    return got.error();
  }
  std::vector<std::string> names;
  for (const auto& kv : got->kvs) {
    std::string_view rest(kv.key);
    rest.remove_prefix(m_settings.prefix.size());
    auto slash = rest.rfind('/');
    if (slash == std::string_view::npos || slash == 0) {
      continue;  // not a lock's key
    }
    std::string name;
    bool ok = true;
    for (size_t i = 0; i < slash && ok; ++i) {
      if (rest[i] != '%') {
        name.push_back(rest[i]);
      } else if (rest.substr(i, 3) == "%25") {
        name.push_back('%');
        i += 2;
      } else if (rest.substr(i, 3) == "%2F") {
        name.push_back('/');
        i += 2;
      } else {
        ok = false;
      }
    }
    if (ok && rest.substr(0, slash).find('/') == std::string_view::npos) {
      names.push_back(std::move(name));
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace

std::string etcd_lock_prefix(const std::string& prefix,
                             const std::string& name) {
  std::string out = prefix;
  for (char c : name) {
    if (c == '%') {
      out += "%25";
    } else if (c == '/') {
      out += "%2F";
    } else {
      out.push_back(c);
    }
  }
  out.push_back('/');
  return out;
}

Result<std::unique_ptr<Backend>> open_etcd(const Settings& settings,
                                           Deadline deadline) {
  if (settings.limit != 1) {
    return Error{ErrorKind::config, "--limit is not supported on etcd"};
  }
  if (settings.shared) {
    return Error{ErrorKind::config, "--shared is not supported on etcd"};
  }
  if (settings.replicas != 0) {
    // etcd answers a write only once a majority of members has it.
    return Error{ErrorKind::config,
                 "--replicas is for Redis replication: etcd commits every "
                 "write to a majority of its members"};
  }
  const config::Endpoint& ep = settings.endpoint;
  etcd::ClientOptions options;
  const char* scheme = ep.tls.enabled ? "https" : "http";
  for (const auto& m : ep.members) {
    options.endpoints.push_back(
        m.host.find(':') != std::string::npos
            ? fmt::format("{}://[{}]:{}", scheme, m.host, m.port)
            : fmt::format("{}://{}:{}", scheme, m.host, m.port));
  }
  options.tls.ca_file = ep.tls.ca_file;
  options.tls.ca_dir = ep.tls.ca_dir;
  options.tls.cert_file = ep.tls.cert_file;
  options.tls.key_file = ep.tls.key_file;
  options.tls.sni = ep.tls.sni;
  options.tls.insecure = ep.tls.insecure;
  options.user = ep.user;
  options.password = ep.password;
  options.attempt_timeout = k_attempt_timeout;
  if (!options.user.empty() && options.password.empty()) {
    return Error{ErrorKind::config,
                 fmt::format("etcd user '{}' needs a password (set "
                             "GODISLOCK_PASSWORD or use --password-file)",
                             options.user)};
  }
  auto client = etcd::Client::create(options);
  if (!client) {
    return client.error();
  }
  // One read of the lock's oldest key, as Redis's backend connects at
  // once: an unreachable cluster, a server that is not etcd, bad
  // credentials or a user without access to the prefix end the run here,
  // before any wait. The first try of `run` uses what it saw.
  auto seen = client->range(
      oldest(etcd_lock_prefix(settings.prefix, settings.name)), deadline);
  if (!seen) {
    return seen.error();
  }
  auto b = std::make_unique<EtcdBackend>(settings, options, std::move(*client),
                                         std::make_shared<Shared>());
  b->keep_opening_look(std::move(*seen));
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace godislock::backend
