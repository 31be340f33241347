// SPDX-License-Identifier: MIT
#include "app/app.hpp"

#include "app/common.hpp"
#include "app/exit_code.hpp"
#include "backend/backend.hpp"
#include "cli/options.hpp"
#include "config/duration.hpp"
#include "config/url.hpp"
#include "lock/acquirer.hpp"
#include "lock/validity.hpp"
#include "refresher/refresher.hpp"
#include "supervisor/supervisor.hpp"
#include "util/fd.hpp"
#include "util/log.hpp"
#include "util/random.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

extern char** environ;

namespace godislock::app {

namespace {

using cli::UsageError;
using lock::Millis;
using util::Clock;
using util::Deadline;
using util::ErrorKind;

constexpr size_t k_max_name = 256;
constexpr size_t k_max_prefix = 256;

bool has_control(const std::string& s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return true;
    }
  }
  return false;
}

// 64-bit FNV-1a: a stable, dependency-free hash for derived lock names.
uint64_t fnv1a(const std::string& data) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

// Derives a lock name from the command, so that the same command line in
// two crontabs is mutually exclusive without naming anything:
// "cmd:<basename of argv[0]>:<16 hex digits of FNV-1a over the argv words,
// each followed by a NUL>" (for -c: over "sh", "-c", the string).
std::string derive_name(const std::vector<std::string>& argv) {
  std::string joined;
  for (const auto& a : argv) {
    joined += a;
    joined.push_back('\0');
  }
  std::string base = argv.empty() ? "" : argv[0];
  if (auto slash = base.rfind('/'); slash != std::string::npos) {
    base = base.substr(slash + 1);
  }
  std::string clean;
  for (char c : base) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    clean.push_back(ok ? c : '_');
    if (clean.size() == 64) {
      break;
    }
  }
  return fmt::format("cmd:{}:{:016x}", clean, fnv1a(joined));
}

namespace {

std::string read_password_file(const std::string& path) {
  auto fail = [&](int err) {
    return UsageError{fmt::format("cannot read --password-file '{}': {}",
                                  path, std::strerror(err))};
  };
  util::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    throw fail(errno);
  }
  std::string pw;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      throw fail(errno);  // e.g. EISDIR
    }
    if (n == 0) {
      break;
    }
    pw.append(buf, static_cast<size_t>(n));
    if (pw.size() > 65536) {
      throw UsageError{
          fmt::format("--password-file '{}' is too large for a password", path)};
    }
  }
  // One trailing newline is the file's, not the password's.
  if (!pw.empty() && pw.back() == '\n') {
    pw.pop_back();
    if (!pw.empty() && pw.back() == '\r') {
      pw.pop_back();
    }
  }
  if (pw.empty()) {
    throw UsageError{fmt::format("--password-file '{}' is empty", path)};
  }
  return pw;
}

// The child's environment: ours without our secrets, plus the lock's name
// (the fencing token and slot are added once the lock is held).
std::vector<std::string> child_environment(const std::string& name,
                                           bool url_env_has_password) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    auto key = kv.substr(0, kv.find('='));
    if (key == "REDISCLI_AUTH" || key == "GODISLOCK_PASSWORD" ||
        key == "GODISLOCK_NAME" || key == "GODISLOCK_FENCE" ||
        key == "GODISLOCK_SLOT" ||
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
  auto r = b.release(token, Deadline::after(timeout));
  if (!r && r.error().kind == ErrorKind::io) {
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
    while (cut > 0 && (static_cast<unsigned char>(h.command[cut]) & 0xC0) ==
                          0x80) {
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
  std::string text = fmt::format("{}:{} ({})", a.holder_host, a.holder_pid,
                                 a.holder_cmd);
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
  return describe_shape(o.shared     ? "shared"
                        : o.limit > 1 ? "limit:" + std::to_string(o.limit)
                                      : "exclusive");
}

bool is_terminating(int sig) {
  return sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT;
}

}  // namespace

config::Endpoint endpoint_for(const cli::ConnectionOptions& o) {
  util::set_log_level(o.verbose ? util::LogLevel::verbose
                      : o.quiet ? util::LogLevel::quiet
                                : util::LogLevel::normal);
  std::string why;
  auto endpoint = config::parse_url(o.url, &why);
  if (!endpoint) {
    throw UsageError{fmt::format("invalid Redis URL: {}", why)};
  }
  if (endpoint->password_in_url) {
    GODISLOCK_WARN(
        "using a password in the URL may not be safe (other users can see "
        "command lines); use GODISLOCK_PASSWORD or --password-file");
  }
  if (o.password_file) {
    endpoint->password = read_password_file(*o.password_file);
  } else if (endpoint->password.empty()) {
    for (const char* var : {"GODISLOCK_PASSWORD", "REDISCLI_AUTH"}) {
      const char* v = std::getenv(var);
      if (v != nullptr && *v != '\0') {
        endpoint->password = v;
        break;
      }
    }
  }
  return *endpoint;
}

void check_name(const std::string& name) {
  if (name.empty()) {
    throw UsageError{"--name must not be empty"};
  }
  if (name.size() > k_max_name) {
    throw UsageError{fmt::format("--name is {} bytes long; the limit is {}",
                                 name.size(), k_max_name)};
  }
  if (has_control(name)) {
    throw UsageError{"--name must not contain control characters"};
  }
}

void check_prefix(const std::string& prefix) {
  if (prefix.size() > k_max_prefix || has_control(prefix)) {
    throw UsageError{fmt::format(
        "--prefix must be at most {} bytes without control characters",
        k_max_prefix)};
  }
}

int exit_code_for_error(const util::Error& e) {
  if (e.kind == ErrorKind::foreign) {
    return k_exit_foreign_key;
  }
  return e.kind == ErrorKind::config ? k_exit_usage : k_exit_unavailable;
}

std::string whole_seconds(Millis d) {
  return config::format_duration(Millis(d.count() / 1000 * 1000));
}

namespace {

int run_command(const cli::RunOptions& o) {
  // --- Configuration: every check before anything touches Redis. ---
  auto endpoint = endpoint_for(o);

  std::vector<std::string> argv = o.command;
  if (o.shell_command) {
    argv = {"/bin/sh", "-c", *o.shell_command};
  }
  std::string name;
  if (o.name) {
    name = *o.name;
    if (name.empty()) {
      throw UsageError{"--name must not be empty"};
    }
  } else {
    name = derive_name(o.shell_command
                           ? std::vector<std::string>{"sh", "-c",
                                                      *o.shell_command}
                           : argv);
  }
  check_name(name);
  check_prefix(o.prefix);
  if (o.ttl < Millis(3)) {
    throw UsageError{fmt::format("--ttl {} is below the minimum of 3ms",
                                 config::format_duration(o.ttl))};
  }
  Millis kill_after = o.kill_after.value_or(lock::default_kill_after(o.ttl));
  lock::LeaseTiming timing;
  if (!o.kill_after && !lock::make_timing(o.ttl, kill_after, &timing)) {
    Millis min_ttl(3);
    while (!lock::make_timing(min_ttl, lock::default_kill_after(min_ttl),
                              &timing)) {
      min_ttl += Millis(1);
    }
    throw UsageError{fmt::format(
        "--ttl {} is too short to stop the command before the lease expires "
        "(use --ttl {} or more)",
        config::format_duration(o.ttl), config::format_duration(min_ttl))};
  }
  if (!lock::make_timing(o.ttl, kill_after, &timing)) {
    auto max_fit = lock::max_kill_after(o.ttl);
    throw UsageError{fmt::format(
        "--kill-after {} does not fit in --ttl {}: the command could not be "
        "stopped before the lease expires ({}use --ttl {} or more)",
        config::format_duration(kill_after), config::format_duration(o.ttl),
        max_fit.count() >= 0
            ? fmt::format("use --kill-after {} or less, or ",
                          config::format_duration(max_fit))
            : std::string(),
        config::format_duration(lock::min_ttl_for(kill_after)))};
  }
  int kill_signal = supervisor::parse_signal(o.kill_signal);
  if (kill_signal == 0) {
    throw UsageError{
        fmt::format("invalid value '{}' for --kill-signal: unknown signal",
                    o.kill_signal)};
  }
  auto resolved = supervisor::resolve_command(argv[0]);
  if (resolved.error != 0) {
    throw Fatal{supervisor::exec_failure_code(resolved.error),
                fmt::format("cannot run '{}': {}", argv[0],
                            resolved.error == ENOENT
                                ? "command not found"
                                : std::strerror(resolved.error))};
  }

  bool single_try = o.nonblock || (o.wait && o.wait->count() == 0);
  backend::Settings settings;
  settings.endpoint = endpoint;
  settings.prefix = o.prefix;
  settings.name = name;
  settings.limit = o.limit;
  settings.shared = o.shared;
  settings.holder = holder_identity(argv);
  GODISLOCK_DEBUG("lock '{}'{} on {}, prefix '{}', ttl {}, wait {}", name,
                  o.name ? "" : " (derived from the command)",
                  endpoint.redacted(), o.prefix,
                  config::format_duration(o.ttl),
                  single_try ? "none"
                  : o.wait   ? config::format_duration(*o.wait)
                             : "forever");

  auto token = util::random_token();
  if (!token) {
    throw Fatal{k_exit_internal,
                fmt::format("no secure random token: {}",
                            token.error().message)};
  }

  // --- Acquire ---
  auto b = backend::open(settings, Deadline::after(o.connect_timeout));
  if (!b) {
    throw Fatal{exit_code_for_error(b.error()), b.error().message};
  }
  std::unique_ptr<backend::Backend> lock_backend = std::move(b.value());
  lock_backend->set_interrupt_fd(supervisor::signal_fd());

  // What the command's start needs is prepared before the lock is taken,
  // to keep it off the path from the acquisition (or a hand-over) to the
  // command's start: only the fence is added then.
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw Fatal{k_exit_internal, fmt::format("cannot create a pipe: {}",
                                             std::strerror(errno))};
  }
  util::Fd wake_rd(wake[0]);
  util::Fd wake_wr(wake[1]);
  // Orphaned grandchildren are reparented to us, so that a lock loss can
  // still reach them and none outlives the lease.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  const char* url_env = std::getenv("GODISLOCK_URL");
  auto url_env_ep =
      config::parse_url(url_env != nullptr ? url_env : "", nullptr);
  auto env =
      child_environment(name, url_env_ep && url_env_ep->password_in_url);

  lock::AcquireRequest req;
  req.token = *token;
  req.ttl = o.ttl;
  req.single_try = single_try;
  req.fair = !o.no_fair;
  req.wait = o.wait ? Deadline::after(*o.wait) : Deadline::never();
  req.outage_tolerance = o.connect_timeout;
  // A lock handed over by its releaser is used at once while its lease
  // (counted from our latest attempt) leaves comfortably more than the
  // check below needs.
  req.handover_max_age =
      (timing.give_up_after - timing.refresh_interval) / 2;
  // What a waiter says: with -v once who holds the lock; on a terminal a
  // live line with the time waited (cron and CI logs stay clean).
  bool said_holder = false;
  std::string holder_text;
  auto wait_started = Clock::now();
  req.on_blocked = [&](const backend::Attempt& a) {
    std::string who = describe_holder(a, true);
    if (!who.empty()) {
      holder_text = describe_holder(a, false);
    }
    if (!said_holder && !who.empty()) {
      said_holder = true;
      GODISLOCK_DEBUG("waiting for lock '{}' held by {}", name, who);
    }
  };
  bool live_line = !single_try && !o.quiet && ::isatty(STDERR_FILENO) == 1;
  if (live_line) {
    req.tick = Millis(1000);
    req.on_tick = [&]() {
      auto waited = std::chrono::duration_cast<std::chrono::seconds>(
          Clock::now() - wait_started);
      util::status_line(fmt::format(
          "godislock: waiting for lock '{}'{}{}: {}s", name,
          holder_text.empty() ? "" : " held by ",
          holder_text, waited.count()));
    };
  }
  lock::AcquireResult got;
  using Outcome = lock::AcquireResult::Outcome;
  for (;;) {
    bool maybe_holding = false;
    auto r = lock::acquire(*lock_backend, req, &maybe_holding);
    if (!r) {
      if (r.error().kind == ErrorKind::interrupted) {
        int sig = supervisor::take_signal();
        if (!is_terminating(sig)) {
          continue;  // SIGCHLD, SIGCONT, ...: keep waiting
        }
        if (maybe_holding) {
          release_best_effort(*lock_backend, *token, o.connect_timeout);
        }
        GODISLOCK_DEBUG("signal {} while waiting for the lock", sig);
        return 128 + sig;
      }
      if (maybe_holding) {
        release_best_effort(*lock_backend, *token, o.connect_timeout);
      }
      throw Fatal{exit_code_for_error(r.error()), r.error().message};
    }
    got = *r;
    if (live_line) {
      util::status_line("");
    }
    if (got.outcome != Outcome::acquired) {
      if (maybe_holding) {
        release_best_effort(*lock_backend, *token, o.connect_timeout);
      }
      break;
    }
    // The lease counts from the start of the attempt that took it. A reply
    // that arrived too late (server paused, network stalled) leaves no
    // lease we could prove: starting the command now could overlap the
    // next holder. The command starts only while there is still room for a
    // refresh before the lease must be given up; otherwise give it back and
    // try again while --wait allows.
    auto late = Clock::now() - got.acquired_at;
    if (late + timing.refresh_interval <= timing.give_up_after) {
      break;
    }
    release_best_effort(*lock_backend, *token, o.connect_timeout);
    std::string too_late = fmt::format(
        "the reply that granted lock '{}' took {} ms, too late to use the "
        "lease",
        name, std::chrono::duration_cast<Millis>(late).count());
    if (single_try || req.wait.expired()) {
      GODISLOCK_WARN("{}; not acquired", too_late);
      return o.conflict_exit_code;
    }
    GODISLOCK_DEBUG("{}; trying again", too_late);
  }
  switch (got.outcome) {
    case Outcome::acquired:
      break;
    case Outcome::timed_out:
      GODISLOCK_DEBUG("lock '{}' not acquired: {}", name,
                      single_try ? "it is held" : "wait time ran out");
      return o.conflict_exit_code;
    case Outcome::no_expiry:
      throw Fatal{k_exit_foreign_key,
                  fmt::format("lock '{}': its key exists without a TTL (not "
                              "made by godislock, or stale); left alone: "
                              "delete it if it is stale",
                              name)};
    case Outcome::wrong_type:
      throw Fatal{k_exit_foreign_key,
                  fmt::format("lock '{}': key '{}' holds a {}, not a lock; "
                              "left alone (use another --name or --prefix)",
                              name, got.detail_key, got.detail)};
    case Outcome::mismatch:
      throw Fatal{k_exit_foreign_key,
                  fmt::format("lock '{}' is in use as {}, not as {}: all its "
                              "users must ask for the same kind",
                              name, describe_shape(got.detail),
                              describe_shape(o))};
  }
  GODISLOCK_DEBUG("acquired lock '{}'{} with fence {} after {} attempt(s), "
                  "{} wakeup(s){}",
                  name,
                  o.shared      ? " (shared)"
                  : o.limit > 1 ? fmt::format(" slot {} of {}", got.slot,
                                              o.limit)
                                : "",
                  got.fence, got.attempts, got.wakeups,
                  got.handed_over ? ", handed over by its releaser" : "");

  // --- Run the command while a refresher keeps the lease ---
  env.push_back("GODISLOCK_FENCE=" + std::to_string(got.fence));
  if (got.slot != 0) {
    env.push_back("GODISLOCK_SLOT=" + std::to_string(got.slot));
  }
  int exec_errno = 0;
  auto child = supervisor::spawn(resolved.path, argv, env, &exec_errno);
  if (!child) {
    release_best_effort(*lock_backend, *token, o.connect_timeout);
    if (exec_errno != 0) {
      throw Fatal{supervisor::exec_failure_code(exec_errno),
                  fmt::format("cannot run '{}': {}", argv[0],
                              std::strerror(exec_errno))};
    }
    throw Fatal{k_exit_internal, child.error().message};
  }
  GODISLOCK_DEBUG("started '{}' as pid {}", argv[0], child->pid);
  got.watch.reset();  // the subscription, no longer needed

  // The refresher's thread starts only as its first refresh draws near, and
  // its connection opens on that refresh: neither is on the path from
  // acquisition to the child's start, and a short command needs neither.
  refresher::Refresher refresher(lock_backend->clone(), *token,
                                 timing, got.acquired_at, wake_wr.get());
  auto outcome = supervisor::supervise(
      *child, wake_rd.get(), kill_signal, kill_after,
      {refresher.start_by(), [&refresher] { refresher.start(); }});

  // --- Release and report ---
  // Release first, join the refresher after: the next holder should not
  // wait for a thread to wind down (a refresh racing the release fails the
  // token check and changes nothing).
  refresher.request_stop();
  auto released = release_lock(*lock_backend, *token, o.connect_timeout);
  refresher.stop();
  if (outcome.lost) {
    auto detect = std::chrono::duration_cast<Millis>(
        outcome.lost_signalled_at - refresher.lost_at());
    GODISLOCK_ERROR("lock '{}' lost while the command ran: {}; the command "
                    "was sent signal {} ({} ms after the loss was detected)",
                    name, refresher.lost_reason(), kill_signal,
                    detect.count());
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
        outcome.exited_at < refresher.valid_until()
            ? "the command ended within the lease: the release came late, "
              "or the key was deleted or overwritten"
            : "expired, deleted or taken over since the last refresh");
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
  GODISLOCK_DEBUG("released lock '{}'; command exited with {} after {} "
                  "refresh(es)",
                  name, code, refresher.refreshes());
  return code;
}

// Prints help or version text; false (errno set) when stdout is closed or
// a broken pipe.
bool print_stdout(std::string text) {
  if (supervisor::was_closed_at_start(STDOUT_FILENO)) {
    errno = EBADF;
    return false;
  }
  if (text.empty() || text.back() != '\n') {
    text.push_back('\n');
  }
  return util::write_all(STDOUT_FILENO, text.data(), text.size());
}


}  // namespace

int run(int argc, char** argv) {
  try {
    auto st = supervisor::init_signals();
    if (!st) {
      GODISLOCK_ERROR("{}", st.error().message);
      return k_exit_internal;
    }
    cli::Options opts = cli::parse(argc, argv);
    switch (opts.action) {
      case cli::Options::Action::show_help:
      case cli::Options::Action::show_version:
      case cli::Options::Action::show_completion:
        if (!print_stdout(opts.text)) {
          GODISLOCK_ERROR("cannot write to standard output: {}",
                          std::strerror(errno));
          return k_exit_internal;
        }
        return 0;
      case cli::Options::Action::status:
        return status_command(opts.status);
      case cli::Options::Action::release:
        return release_command(opts.release);
      case cli::Options::Action::run:
        break;
    }
    return run_command(opts.run);
  } catch (const UsageError& e) {
    GODISLOCK_ERROR("{}", e.message);
    return k_exit_usage;
  } catch (const Fatal& e) {
    GODISLOCK_ERROR("{}", e.message);
    return e.code;
  } catch (const std::exception& e) {
    GODISLOCK_ERROR("internal error: {}", e.what());
    return k_exit_internal;
  }
}

}  // namespace godislock::app
