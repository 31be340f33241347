// SPDX-License-Identifier: MIT
// `godislock run`, as phases: plan (app/plan.cpp), open a session, acquire
// the lock, run the command supervised, release and report.
#include "app/common.hpp"
#include "app/exit_code.hpp"
#include "app/plan.hpp"
#include "backend/backend.hpp"
#include "config/duration.hpp"
#include "config/url.hpp"
#include "lock/acquirer.hpp"
#include "lock/validity.hpp"
#include "refresher/refresher.hpp"
#include "signals/signals.hpp"
#include "supervisor/supervisor.hpp"
#include "util/fd.hpp"
#include "util/log.hpp"
#include "util/random.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <variant>

extern char** environ;

namespace godislock::app {

namespace {

using backend::Outcome;
using lock::Millis;
using util::Clock;
using util::Deadline;
using util::ErrorKind;

// The child's environment: ours without our secrets, plus the lock's name
// (the fencing token and slot are added once the lock is held).
std::vector<std::string> child_environment(const std::string& name,
                                           bool url_env_has_password) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    auto key = kv.substr(0, kv.find('='));
    if (key == "REDISCLI_AUTH" || key == "GODISLOCK_PASSWORD" ||
        key == "GODISLOCK_SENTINEL_PASSWORD" || key == "GODISLOCK_NAME" ||
        key == "GODISLOCK_FENCE" || key == "GODISLOCK_SLOT" ||
        (key == "GODISLOCK_URL" && url_env_has_password)) {
      continue;
    }
    env.emplace_back(kv);
  }
  env.push_back("GODISLOCK_NAME=" + name);
  return env;
}

// Releases by token with a short deadline; never throws. Returns whether the
// key was still ours, or why Redis could not release it.
util::Result<bool> release_lock(backend::Backend& b, const std::string& token,
                                Millis timeout) {
  b.set_interrupt_fd(-1);  // a pending signal must not cut the release
  // A second try only after an I/O error: the connection may have died
  // while idle (server restarted) and the backend reconnects. After a
  // timeout, another try would only double the wait on a hung server.
  // Likewise after a failover noticed at this call (READONLY through
  // Sentinel): the backend finds the new master for the second try.
  auto r = b.release(token, Deadline::after(timeout));
  if (!r && (r.error().kind == ErrorKind::io ||
             (r.error().kind == ErrorKind::busy && b.can_fail_over()))) {
    GODISLOCK_DEBUG("release failed: {}; once more", r.error().message);
    r = b.release(token, Deadline::after(timeout));
  }
  return r;
}

// On a way out without the command: the key may be ours (a lost reply) or
// our token queued; errors only delay the cleanup to the key's TTL.
void release_best_effort(backend::Backend& b, const std::string& token,
                         Millis timeout) {
  auto r = release_lock(b, token, timeout);
  if (!r) {
    GODISLOCK_DEBUG("could not release by token: {}", r.error().message);
  }
}

// Who we are, for the holder record beside the lock.
backend::Holder holder_identity(const std::vector<std::string>& argv) {
  backend::Holder h;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) {
    h.host = host;
  }
  h.pid = std::to_string(::getpid());
  for (const char* var : {"USER", "LOGNAME"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && *v != '\0') {
      h.user = v;
      break;
    }
  }
  if (h.user.empty()) {
    struct passwd pw;
    struct passwd* found = nullptr;
    char buf[1024];
    if (::getpwuid_r(::geteuid(), &pw, buf, sizeof buf, &found) == 0 &&
        found != nullptr) {
      h.user = found->pw_name;
    } else {
      h.user = "uid " + std::to_string(::geteuid());
    }
  }
  for (const auto& word : argv) {
    if (!h.command.empty()) {
      h.command.push_back(' ');
    }
    h.command.append(word);
    if (h.command.size() >= backend::k_holder_cmd_cap) {
      break;
    }
  }
  if (h.command.size() > backend::k_holder_cmd_cap) {
    // Cut at a character boundary (UTF-8 continuation bytes are 10xxxxxx).
    size_t cut = backend::k_holder_cmd_cap;
    while (cut > 0 &&
           (static_cast<unsigned char>(h.command[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    h.command.resize(cut);
  }
  return h;
}

// "HOST:PID (COMMAND) for 12s", or "" when the holder is not known (it
// may be a godislock too old to say, or a place is free but others queue).
std::string describe_holder(const backend::Attempt& a, bool with_age) {
  if (a.holder_host.empty() && a.holder_pid.empty()) {
    return "";
  }
  std::string text =
      fmt::format("{}:{} ({})", a.holder_host, a.holder_pid, a.holder_cmd);
  if (with_age && a.holder_age) {
    text += " for " + whole_seconds(*a.holder_age);
  }
  if (a.holders > 1) {
    text += fmt::format(", and by {} other{}", a.holders - 1,
                        a.holders > 2 ? "s" : "");
  }
  return text;
}

// "an exclusive lock", "a shared lock", "a counted lock (--limit 3)".
std::string describe_shape(const std::string& shape) {
  if (shape.rfind("limit:", 0) == 0) {
    return fmt::format("a counted lock (--limit {})", shape.substr(6));
  }
  return shape == "shared" ? "a shared lock" : "an exclusive lock";
}

std::string describe_shape(const cli::RunOptions& o) {
  return describe_shape(o.shared      ? "shared"
                        : o.limit > 1 ? "limit:" + std::to_string(o.limit)
                                      : "exclusive");
}

// Says how the lease was lost and how the command was stopped.
void report_loss(const std::string& name, const supervisor::Outcome& outcome,
                 const refresher::Refresher& refresher,
                 const std::string& kill_signal) {
  std::string why = refresher.lost_reason();
  if (!refresher.is_lost()) {
    // The supervisor's own deadline came first.
    std::string error = refresher.last_error();
    why = error.empty() ? "no refresh succeeded in time (the refresher did "
                          "not report)"
                        : "could not refresh the lease in time: " + error;
  }
  Clock::time_point detected =
      refresher.is_lost()
          ? std::min(refresher.lost_at(), outcome.lost_signalled_at)
          : outcome.lost_signalled_at;
  auto detect =
      std::chrono::duration_cast<Millis>(outcome.lost_signalled_at - detected);
  GODISLOCK_ERROR(
      "lock '{}' lost while the command ran: {}; the command "
      "was sent signal {} ({} ms after the loss was detected)",
      name, why, supervisor::parse_signal(kill_signal), detect.count());
}

// Says how the run ended and returns the exit status for it.
int report(const std::string& name, const cli::RunOptions& o,
           const supervisor::Outcome& outcome, util::Result<bool> released,
           const lock::LeaseClock& lease,
           const refresher::Refresher& refresher) {
  if (outcome.failed) {
    GODISLOCK_ERROR(
        "lock '{}': the command could not be supervised ({}); "
        "it was killed",
        name, outcome.failure);
    return k_exit_internal;
  }
  if (outcome.lost) {
    report_loss(name, outcome, refresher, o.kill_signal);
    return k_exit_lock_lost;
  }
  if (released && !*released) {
    // Strict on purpose: a key deleted or taken over by a third party looks
    // the same as a release that merely came late, and only the first can
    // mean that another holder ran beside the command.
    GODISLOCK_ERROR(
        "lock '{}' was not held any more at release ({}); another holder "
        "may have run beside the command",
        name,
        outcome.exited_at < lease.valid_until()
            ? "the command ended within the lease: the release came late, "
              "or the key was deleted or overwritten"
            : "expired, deleted or taken over since the last refresh");
    return k_exit_lock_lost;
  }
  if (!released && outcome.exited_at >= lease.valid_until()) {
    // Nothing proves that the lock was held to the command's end.
    GODISLOCK_ERROR(
        "lock '{}': the command ended after the lease could "
        "have expired, and the release failed ({}); another "
        "holder may have run beside the command",
        name, released.error().message);
    return k_exit_lock_lost;
  }
  if (!released && released.error().kind == ErrorKind::foreign) {
    GODISLOCK_ERROR(
        "lock '{}': {}; left alone, and the lock with it: it "
        "expires within {} (use another --name or --prefix)",
        name, released.error().message, config::format_duration(o.ttl));
    return k_exit_foreign_key;
  }
  if (!released) {
    GODISLOCK_WARN("could not release lock '{}': {}; it expires within {}",
                   name, released.error().message,
                   config::format_duration(o.ttl));
  }
  int code = supervisor::exit_code_for(outcome.wait_status);
  GODISLOCK_DEBUG(
      "released lock '{}'; command exited with {} after {} "
      "refresh(es)",
      name, code, refresher.refreshes());
  return code;
}

bool is_terminating(int sig) {
  return sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT;
}

// What a run holds from before the lock is taken until its end. Everything
// the command's start needs is prepared here, before the lock is taken, to
// keep it off the path from the acquisition (or a hand-over) to the
// command's start: only the fence is added then.
struct Session {
  std::unique_ptr<backend::Backend> backend;
  std::string token;
  supervisor::Resolved command;  // argv[0], found in PATH
  util::Fd wake_rd;              // the refresher reports a loss here
  util::Fd wake_wr;
  std::vector<std::string> env;  // the command's, less the fence
};

Session open_session(const cli::RunOptions& o, const RunPlan& plan,
                     const config::Endpoint& endpoint) {
  Session s;
  s.command = supervisor::resolve_command(plan.argv[0]);
  if (s.command.error != 0) {
    throw Fatal{supervisor::exec_failure_code(s.command.error),
                fmt::format("cannot run '{}': {}", plan.argv[0],
                            s.command.error == ENOENT
                                ? "command not found"
                                : std::strerror(s.command.error))};
  }
  backend::Settings settings;
  settings.endpoint = endpoint;
  settings.prefix = o.prefix;
  settings.name = plan.name;
  settings.limit = o.limit;
  settings.shared = o.shared;
  settings.holder = holder_identity(plan.argv);
  settings.replicas = o.replicas;
  settings.replica_timeout = o.replica_timeout;
  GODISLOCK_DEBUG("lock '{}'{} on {}, prefix '{}', ttl {}, wait {}", plan.name,
                  plan.name_derived ? " (derived from the command)" : "",
                  endpoint.redacted(), o.prefix, config::format_duration(o.ttl),
                  plan.single_try ? "none"
                  : o.wait        ? config::format_duration(*o.wait)
                                  : "forever");
  auto token = util::random_token();
  if (!token) {
    throw Fatal{k_exit_internal, fmt::format("no secure random token: {}",
                                             token.error().message)};
  }
  s.token = *token;
  auto b = backend::open(settings, Deadline::after(o.connect_timeout));
  if (!b) {
    throw Fatal{exit_code_for_error(b.error()), b.error().message};
  }
  s.backend = std::move(b.value());
  s.backend->set_interrupt_fd(signals::fd());
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw Fatal{k_exit_internal,
                fmt::format("cannot create a pipe: {}", std::strerror(errno))};
  }
  s.wake_rd.reset(wake[0]);
  s.wake_wr.reset(wake[1]);
  // Orphaned grandchildren are reparented to us, so that a lock loss can
  // still reach them and none outlives the lease.
  if (auto st = supervisor::become_subreaper(); !st) {
    throw Fatal{k_exit_internal, st.error().message};
  }
  const char* url_env = std::getenv("GODISLOCK_URL");
  auto url_env_ep =
      config::parse_url(url_env != nullptr ? url_env : "", nullptr);
  s.env =
      child_environment(plan.name, url_env_ep && url_env_ep->password_in_url);
  return s;
}

// What a waiter says (with -v once who holds the lock; on a terminal a
// live line with the time waited, so cron and CI logs stay clean) and
// which signal ended its wait.
struct Waiting {
  std::string name;
  bool said_holder = false;
  std::string holder_text;
  Clock::time_point started = Clock::now();
  bool live_line = false;
  int stop_signal = 0;
};

lock::AcquireRequest make_request(const cli::RunOptions& o, const RunPlan& plan,
                                  const Session& s, Waiting& w) {
  lock::AcquireRequest req;
  req.token = s.token;
  req.ttl = o.ttl;
  req.single_try = plan.single_try;
  req.fair = !o.no_fair;
  req.wait = o.wait ? Deadline::after(*o.wait) : Deadline::never();
  req.outage_tolerance = o.connect_timeout;
  // A lock handed over by its releaser is used at once while its lease
  // (counted from our latest attempt) leaves comfortably more than
  // acquire_lock()'s check of a late reply needs.
  req.handover_max_age =
      (plan.timing.give_up_after - plan.timing.refresh_interval) / 2;
  // With --replicas a lock handed over is taken by one more attempt of our
  // own: its WAIT is what counts the replicas (the hand-over was written
  // on the releaser's connection).
  if (o.replicas > 0) {
    req.handover_max_age = Millis(0);
  }
  req.on_blocked = [&w](const backend::Attempt& a) {
    std::string who = describe_holder(a, true);
    if (!who.empty()) {
      w.holder_text = describe_holder(a, false);
    }
    if (!w.said_holder && !who.empty()) {
      w.said_holder = true;
      GODISLOCK_DEBUG("waiting for lock '{}' held by {}", w.name, who);
    }
  };
  w.live_line = !plan.single_try && !o.quiet && ::isatty(STDERR_FILENO) == 1;
  if (w.live_line) {
    req.tick = Millis(1000);
    req.on_tick = [&w]() {
      auto waited = std::chrono::duration_cast<std::chrono::seconds>(
          Clock::now() - w.started);
      util::status_line(fmt::format("godislock: waiting for lock '{}'{}{}: {}s",
                                    w.name,
                                    w.holder_text.empty() ? "" : " held by ",
                                    w.holder_text, waited.count()));
    };
  }
  // Only a terminating signal ends the wait; any other (USR1, CONT, ...)
  // is taken and the wait goes on where it was.
  req.on_interrupt = [&w] {
    while (int sig = signals::take()) {
      if (is_terminating(sig)) {
        w.stop_signal = sig;
      } else {
        GODISLOCK_DEBUG("signal {} while waiting for the lock: ignored", sig);
      }
    }
    return w.stop_signal != 0;
  };
  return req;
}

// The acquisition's outcome, when it is not the lock: the exit status, or
// a Fatal for a lock that is not godislock's or is of another kind.
int not_acquired(const cli::RunOptions& o, const RunPlan& plan,
                 const lock::AcquireResult& got) {
  switch (got.outcome) {
    case Outcome::acquired:  // not here: run_locked()
    case Outcome::held:      // only single attempts end held or queued
    case Outcome::queued:
    case Outcome::timed_out:
      break;
    case Outcome::no_expiry:
      throw Fatal{k_exit_foreign_key,
                  fmt::format("lock '{}': its key exists without a TTL (not "
                              "made by godislock, or stale); left alone: "
                              "delete it if it is stale",
                              plan.name)};
    case Outcome::wrong_type:
      throw Fatal{k_exit_foreign_key,
                  fmt::format("lock '{}': key '{}' holds a {}, not a lock; "
                              "left alone (use another --name or --prefix)",
                              plan.name, got.detail_key, got.detail)};
    case Outcome::mismatch:
      throw Fatal{k_exit_foreign_key,
                  fmt::format("lock '{}' is in use as {}, not as {}: all its "
                              "users must ask for the same kind",
                              plan.name, describe_shape(got.detail),
                              describe_shape(o))};
  }
  if (!got.detail.empty()) {
    // --replicas: taken, but given back each time.
    GODISLOCK_WARN("lock '{}' not acquired: {}", plan.name, got.detail);
    return o.conflict_exit_code;
  }
  GODISLOCK_DEBUG("lock '{}' not acquired: {}", plan.name,
                  plan.single_try ? "it is held" : "wait time ran out");
  return o.conflict_exit_code;
}

// Waits for the lock. Returns it, or the exit status to end with (no lock:
// the conflict code, or 128+N after signal N).
std::variant<lock::AcquireResult, int> acquire_lock(const cli::RunOptions& o,
                                                    const RunPlan& plan,
                                                    Session& s) {
  Waiting w;
  w.name = plan.name;
  lock::AcquireRequest req = make_request(o, plan, s, w);
  const Millis timeout = o.connect_timeout;
  for (;;) {
    bool maybe_holding = false;
    auto r = lock::acquire(*s.backend, req, &maybe_holding);
    if (w.live_line) {
      util::status_line("");
    }
    bool acquired = r && r->outcome == Outcome::acquired;
    if (maybe_holding && !acquired) {
      release_best_effort(*s.backend, s.token, timeout);
    }
    if (!r && r.error().kind == ErrorKind::interrupted) {
      GODISLOCK_DEBUG("signal {} while waiting for the lock", w.stop_signal);
      return 128 + w.stop_signal;
    }
    if (!r) {
      throw Fatal{exit_code_for_error(r.error()), r.error().message};
    }
    if (!acquired) {
      return not_acquired(o, plan, *r);
    }
    // The lease counts from the start of the attempt that took it. A reply
    // that arrived too late (server paused, network stalled) leaves no
    // lease we could prove: starting the command now could overlap the
    // next holder. The command starts only while there is still room for a
    // refresh before the lease must be given up; otherwise give it back and
    // try again while --wait allows.
    auto late = Clock::now() - r->acquired_at;
    if (late + plan.timing.refresh_interval <= plan.timing.give_up_after) {
      return std::move(*r);
    }
    release_best_effort(*s.backend, s.token, timeout);
    std::string too_late = fmt::format(
        "the reply that granted lock '{}' took {} ms, too late to use the "
        "lease",
        plan.name, std::chrono::duration_cast<Millis>(late).count());
    if (plan.single_try || req.wait.expired()) {
      GODISLOCK_WARN("{}; not acquired", too_late);
      return o.conflict_exit_code;
    }
    GODISLOCK_DEBUG("{}; trying again", too_late);
  }
}

// Runs the command while a refresher keeps the lease, then releases the
// lock and returns the exit status.
int run_locked(const cli::RunOptions& o, const RunPlan& plan, Session& s,
               lock::AcquireResult got) {
  GODISLOCK_DEBUG(
      "acquired lock '{}'{} with fence {} after {} attempt(s), "
      "{} wakeup(s){}",
      plan.name,
      o.shared      ? " (shared)"
      : o.limit > 1 ? fmt::format(" slot {} of {}", got.slot, o.limit)
                    : "",
      got.fence, got.attempts, got.wakeups,
      got.handed_over ? ", handed over by its releaser" : "");
  s.env.push_back("GODISLOCK_FENCE=" + std::to_string(got.fence));
  if (got.slot != 0) {
    s.env.push_back("GODISLOCK_SLOT=" + std::to_string(got.slot));
  }
  int exec_errno = 0;
  auto child = supervisor::spawn(s.command.path, plan.argv, s.env, &exec_errno);
  if (!child) {
    release_best_effort(*s.backend, s.token, o.connect_timeout);
    if (exec_errno != 0) {
      throw Fatal{supervisor::exec_failure_code(exec_errno),
                  fmt::format("cannot run '{}': {}", plan.argv[0],
                              std::strerror(exec_errno))};
    }
    throw Fatal{k_exit_internal, child.error().message};
  }
  GODISLOCK_DEBUG("started '{}' as pid {}", plan.argv[0], child->pid);
  got.watch.reset();  // the subscription, no longer needed

  // The refresher's thread starts only as its first refresh draws near, and
  // its connection opens on that refresh: neither is on the path from
  // acquisition to the child's start, and a short command needs neither.
  lock::LeaseClock lease(plan.timing, got.acquired_at);
  refresher::Refresher refresher(s.backend->clone(), s.token, lease,
                                 s.wake_wr.get());
  supervisor::Policy policy;
  policy.wake_fd = s.wake_rd.get();
  policy.kill_signal = plan.kill_signal;
  policy.kill_after = plan.timing.kill_after;
  policy.lease = &lease;
  policy.wait_tree = o.wait_tree;
  policy.alarm = {refresher.start_by(), [&refresher] { refresher.start(); }};
  auto outcome = supervisor::supervise(*child, std::move(policy));

  // Release first, join the refresher after: the next holder should not
  // wait for a thread to wind down (a refresh racing the release fails the
  // token check and changes nothing), and a refresher stalled in a call
  // delays only our exit, never the release or the report.
  refresher.request_stop();
  auto released = release_lock(*s.backend, s.token, o.connect_timeout);
  int code = report(plan.name, o, outcome, released, lease, refresher);
  refresher.stop();
  return code;
}

}  // namespace

int run_command(const cli::RunOptions& o) {
  auto endpoint = endpoint_for(o);
  RunPlan plan = make_plan(o);
  Session session = open_session(o, plan, endpoint);
  auto got = acquire_lock(o, plan, session);
  if (auto* code = std::get_if<int>(&got)) {
    return *code;
  }
  return run_locked(o, plan, session,
                    std::move(std::get<lock::AcquireResult>(got)));
}

}  // namespace godislock::app
