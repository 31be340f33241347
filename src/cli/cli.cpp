// SPDX-License-Identifier: MIT
#include "cli/options.hpp"

#include "backend/backend.hpp"
#include "cli/completion.hpp"
#include "config/duration.hpp"
#include "version.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#include <CLI/CLI.hpp>
#pragma GCC diagnostic pop

#include <fmt/format.h>

#include <cstdlib>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

namespace godislock::cli {

namespace {

const char* const k_exit_codes_text =
    "Exit status:\n"
    "  the command's own    the command ran and exited\n"
    "  128+N                the command was killed by signal N\n"
    "  64                   usage or configuration error\n"
    "  65                   the lock key was not made by godislock (no TTL\n"
    "                       or not a string), or the lock is in use as\n"
    "                       another kind (exclusive, shared, or counted\n"
    "                       with another --limit); nothing is touched\n"
    "  69                   Redis unreachable, or authentication failed\n"
    "  70                   internal error, or the command could not be\n"
    "                       supervised (its process tree was killed)\n"
    "  75                   lock not acquired (--nonblock or --wait ran "
    "out);\n"
    "                       change with -E (flock(1) uses 1)\n"
    "  79                   lock lost while the command ran (it was\n"
    "                       signalled), or found gone at release\n"
    "  126 / 127            command not executable / not found\n"
    "\nSee godislock(1) for details.\n";

const char* const k_status_exit_text =
    "Exit status:\n"
    "  0     every lock named is held (without NAME: at least one is)\n"
    "  1     a lock named is free (without NAME: none is held)\n"
    "  64    usage or configuration error\n"
    "  65    a key of the lock was not made by godislock\n"
    "  69    Redis unreachable, or authentication failed\n"
    "\nSee godislock(1) for details.\n";

const char* const k_release_exit_text =
    "Exit status:\n"
    "  0     the lock was held and is released now\n"
    "  1     the lock was free\n"
    "  64    usage or configuration error (also: no --force)\n"
    "  65    a key of the lock was not made by godislock (left alone)\n"
    "  69    Redis unreachable, or authentication failed\n"
    "\nSee godislock(1) for details.\n";

// The raw values of the options every subcommand that talks to Redis takes.
struct ConnectionInputs {
  std::string url, password_file, prefix, connect_timeout, user;
  std::string cacert, cacertdir, cert, key, sni;
  std::string sentinel_user, sentinel_password_file;
  bool verbose = false, quiet = false, tls = false, insecure = false;
};

// The raw values of `run`'s options, checked and applied by finish_run().
struct RunInputs {
  std::string name, ttl, wait, conflict_code, kill_signal, kill_after;
  std::string shell, limit;
  std::string replicas, replica_timeout;
  bool nonblock = false, no_fair = false, wait_tree = false;
  bool shared = false, exclusive = false, close_fd = false;
  ConnectionInputs connection;
};

// One option, as the only place that names it: CLI11's definitions, the
// fast path, and find_command()'s list of options that take a value are all
// built from the tables below (and --help, from which the man page and the
// completions are checked). Every value is stored as text and checked after
// parsing, the same way whichever parser read it.
template <typename Inputs>
struct OptionSpec {
  const char* names;       // as CLI11 takes them: "-w,--wait,--timeout"
  const char* value_name;  // in --help; nullptr for a flag
  const char* help;
  std::string* (*text)(Inputs&);  // where a value goes
  bool* (*flag)(Inputs&);         // where a flag goes
};

using Ci = ConnectionInputs;
using Ri = RunInputs;
#define GODISLOCK_TEXT(field) [](auto& i) { return &i.field; }, nullptr
#define GODISLOCK_FLAG(field) nullptr, [](auto& i) { return &i.field; }

const OptionSpec<Ci> k_connection_options[] = {
    {"--url", "URL",
     "redis://[user[:password]@]host[:port][/db], rediss://... (TLS), "
     "unix:///path.sock[?db=N], redis-sentinel://[user[:password]@]"
     "host[:port][,host[:port]...]/MASTER[/db], "
     "redis-cluster://host:port[,host:port...] or etcd://host:port[,...] "
     "(env GODISLOCK_URL; default "
     "redis://127.0.0.1:6379)",
     GODISLOCK_TEXT(url)},
    {"--password-file", "FILE",
     "Read the Redis password from FILE (env GODISLOCK_PASSWORD_FILE; else "
     "env GODISLOCK_PASSWORD or REDISCLI_AUTH)",
     GODISLOCK_TEXT(password_file)},
    {"--user", "NAME",
     "Log in as this Redis ACL user (env GODISLOCK_USER; default: the URL's, "
     "else the default user)",
     GODISLOCK_TEXT(user)},
    {"--tls", nullptr,
     "Use TLS with a redis:// URL, as rediss:// does (env GODISLOCK_TLS)",
     GODISLOCK_FLAG(tls)},
    {"--cacert", "FILE",
     "Trust the CA certificates in FILE (PEM) instead of the system's (env "
     "GODISLOCK_CACERT)",
     GODISLOCK_TEXT(cacert)},
    {"--cacertdir", "DIR",
     "Trust the CA certificates in DIR (hashed, as by openssl rehash) instead "
     "of the system's (env GODISLOCK_CACERTDIR)",
     GODISLOCK_TEXT(cacertdir)},
    {"--cert", "FILE",
     "Client certificate (PEM) for servers that ask for one; needs --key "
     "(env GODISLOCK_CERT)",
     GODISLOCK_TEXT(cert)},
    {"--key", "FILE",
     "The client certificate's private key (PEM, unencrypted, not readable "
     "by others) (env GODISLOCK_KEY)",
     GODISLOCK_TEXT(key)},
    {"--sni", "NAME",
     "Send NAME as the TLS server name and check the certificate against it "
     "instead of the URL's host (env GODISLOCK_SNI)",
     GODISLOCK_TEXT(sni)},
    {"--insecure", nullptr,
     "Do not verify the server's certificate or name: anyone on the path can "
     "pose as the server (warned about on every run; env GODISLOCK_INSECURE)",
     GODISLOCK_FLAG(insecure)},
    {"--prefix", "STRING",
     "Key namespace (env GODISLOCK_PREFIX; default \"godislock:\")",
     GODISLOCK_TEXT(prefix)},
    {"--connect-timeout", "DURATION",
     "Deadline for connecting and for each Redis call; also how long an "
     "outage is tolerated while waiting (env GODISLOCK_CONNECT_TIMEOUT; "
     "default 5s)",
     GODISLOCK_TEXT(connect_timeout)},
    {"-v,--verbose", nullptr,
     "Say what happens, never passwords (env GODISLOCK_VERBOSE)",
     GODISLOCK_FLAG(verbose)},
    {"-q,--quiet", nullptr, "Print errors only (env GODISLOCK_QUIET)",
     GODISLOCK_FLAG(quiet)},
    {"--sentinel-user", "USER",
     "User name for the sentinels of a redis-sentinel:// URL, when they "
     "have one of their own (env GODISLOCK_SENTINEL_USER)",
     GODISLOCK_TEXT(sentinel_user)},
    {"--sentinel-password-file", "FILE",
     "Read the sentinels' password from FILE (env "
     "GODISLOCK_SENTINEL_PASSWORD_FILE, else GODISLOCK_SENTINEL_PASSWORD; "
     "default: none)",
     GODISLOCK_TEXT(sentinel_password_file)},
};

const OptionSpec<Ri> k_run_options[] = {
    {"--name", "NAME", "Lock name (default: derived from the command, see -v)",
     GODISLOCK_TEXT(name)},
    {"--ttl", "DURATION",
     "Lease if godislock dies; refreshed every ttl/3 (env GODISLOCK_TTL; "
     "default 30s; at least 3ms, and 7ms to leave room for --kill-after)",
     GODISLOCK_TEXT(ttl)},
    {"-w,--wait,--timeout", "DURATION",
     "Give up waiting after DURATION (env GODISLOCK_WAIT; default: wait "
     "forever; 0: one try)",
     GODISLOCK_TEXT(wait)},
    {"-n,--nonblock,--nb,--no-wait", nullptr,
     "Fail at once if the lock is held (same as --wait 0)",
     GODISLOCK_FLAG(nonblock)},
    {"--no-fair", nullptr,
     "Race for the lock instead of queueing in arrival order (every "
     "release then wakes every such waiter)",
     GODISLOCK_FLAG(no_fair)},
    {"-E,--conflict-exit-code", "N",
     "Exit code when the lock is not acquired (env "
     "GODISLOCK_CONFLICT_EXIT_CODE; default 75)",
     GODISLOCK_TEXT(conflict_code)},
    {"--kill-signal", "SIGNAL",
     "Signal sent to the command's process tree when the lock is lost (env "
     "GODISLOCK_KILL_SIGNAL; default TERM)",
     GODISLOCK_TEXT(kill_signal)},
    {"--kill-after", "DURATION",
     "Then SIGKILL after DURATION (env GODISLOCK_KILL_AFTER; default: "
     "min(5s, ttl/3))",
     GODISLOCK_TEXT(kill_after)},
    {"--wait-tree", nullptr,
     "Hold the lock until every process the command started has exited, "
     "not only the command itself",
     GODISLOCK_FLAG(wait_tree)},
    {"-c,--command", "SHELL COMMAND",
     "Run SHELL COMMAND with /bin/sh -c (like flock -c)",
     GODISLOCK_TEXT(shell)},
    {"--limit", "N",
     "Counted lock: up to N holders at once, each with its own fence and "
     "slot (GODISLOCK_SLOT); all its users must give the same N (default 1)",
     GODISLOCK_TEXT(limit)},
    {"-s,--shared", nullptr,
     "Shared lock (like flock -s): holders may overlap each other, never "
     "an exclusive holder",
     GODISLOCK_FLAG(shared)},
    {"-x,--exclusive", nullptr, "Exclusive lock (the default; like flock -x)",
     GODISLOCK_FLAG(exclusive)},
    {"-o,--close", nullptr,
     "Accepted for flock(1) compatibility (no lock fd is ever passed to the "
     "command)",
     GODISLOCK_FLAG(close_fd)},
    {"--replicas", "N",
     "Count an acquisition or refresh only once N replicas acknowledged it "
     "(Redis WAIT; env GODISLOCK_REPLICAS; default 0). Narrows the window "
     "for losing the lock in a failover; does not close it",
     GODISLOCK_TEXT(replicas)},
    {"--replica-timeout", "DURATION",
     "How long to wait for --replicas each time (env "
     "GODISLOCK_REPLICA_TIMEOUT; default 1s)",
     GODISLOCK_TEXT(replica_timeout)},
};

#undef GODISLOCK_TEXT
#undef GODISLOCK_FLAG

// Whether `names` ("-w,--wait,--timeout") has `name` among its names.
bool has_name(std::string_view names, std::string_view name) {
  while (!names.empty()) {
    size_t comma = names.find(',');
    if (names.substr(0, comma) == name) {
      return true;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    names.remove_prefix(comma + 1);
  }
  return false;
}

// Where an option of `run` (its own or a connection option) stores what it
// was given, found by any of its names; `id` numbers the options.
struct Slot {
  int id = -1;  // -1: no such option
  std::string* text = nullptr;
  bool* flag = nullptr;
};

constexpr int k_run_own = static_cast<int>(std::size(k_run_options));
constexpr size_t k_run_option_count =
    std::size(k_run_options) + std::size(k_connection_options);

// The number of the option of `run` called `name` (its own options first,
// then the connection options), or -1.
int run_option_id(std::string_view name) {
  for (int id = 0; id < static_cast<int>(k_run_option_count); ++id) {
    const char* names = id < k_run_own
                            ? k_run_options[id].names
                            : k_connection_options[id - k_run_own].names;
    if (has_name(names, name)) {
      return id;
    }
  }
  return -1;
}

// Whether option `id` of `run` takes a value.
bool has_value(int id) {
  return id < k_run_own ? k_run_options[id].text != nullptr
                        : k_connection_options[id - k_run_own].text != nullptr;
}

Slot find_run_option(std::string_view name, RunInputs& in) {
  int id = run_option_id(name);
  if (id < 0) {
    return {};
  }
  if (id < k_run_own) {
    const auto& spec = k_run_options[id];
    return {id, spec.text ? spec.text(in) : nullptr,
            spec.flag ? spec.flag(in) : nullptr};
  }
  const auto& spec = k_connection_options[id - k_run_own];
  return {id, spec.text ? spec.text(in.connection) : nullptr,
          spec.flag ? spec.flag(in.connection) : nullptr};
}

// Whether `word` ("--wait" or "-w") names an option of `run` that takes
// a value.
bool takes_value(std::string_view word) {
  int id = run_option_id(word);
  return id >= 0 && has_value(id);
}

template <typename Inputs>
void add_options(CLI::App* sub, Inputs& in, const OptionSpec<Inputs>* specs,
                 size_t count) {
  for (size_t k = 0; k < count; ++k) {
    const OptionSpec<Inputs>& spec = specs[k];
    if (spec.text != nullptr) {
      sub->add_option(spec.names, *spec.text(in), spec.help)
          ->type_name(spec.value_name);
    } else {
      sub->add_flag(spec.names, *spec.flag(in), spec.help);
    }
  }
}

void add_connection_options(CLI::App* sub, ConnectionInputs& in) {
  add_options(sub, in, k_connection_options, std::size(k_connection_options));
}

// Index of the first command word in argv[from..], and whether a "--"
// introduced it; argc if there is no command.
size_t find_command(const std::vector<std::string>& args, size_t from,
                    bool* dashdash) {
  *dashdash = false;
  size_t i = from;
  while (i < args.size()) {
    const std::string& a = args[i];
    if (a == "--") {
      *dashdash = true;
      return i;
    }
    if (a.rfind("--", 0) == 0) {
      bool value_follows = a.find('=') == std::string::npos && takes_value(a);
      i += value_follows ? 2 : 1;
      continue;
    }
    if (a.size() > 1 && a[0] == '-') {
      size_t step = 1;
      for (size_t k = 1; k < a.size(); ++k) {
        char option[] = {'-', a[k], '\0'};
        if (takes_value(option)) {
          if (k + 1 == a.size()) {
            step = 2;  // value in the next word
          }
          break;  // otherwise the value is attached: -w5
        }
      }
      i += step;
      continue;
    }
    return i;
  }
  return args.size();
}

// CLI11 2.1 names a subcommand's usage "run [OPTIONS]"; ours tells where
// the command goes.
class Formatter final : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App* app, std::string name) const override {
    if (app->get_name() == "run") {
      return "Usage: godislock run [OPTIONS] -- COMMAND [ARGS...]\n"
             "       godislock run [OPTIONS] -c 'SHELL COMMAND'\n";
    }
    if (app->get_name() == "status") {
      return "Usage: godislock status [OPTIONS] [NAME...]\n";
    }
    if (app->get_name() == "release") {
      return "Usage: godislock release --force [OPTIONS] NAME\n";
    }
    if (app->get_name() == "acl-rule") {
      return "Usage: godislock acl-rule [--prefix STRING] [--read-only]\n";
    }
    if (app->get_name() == "completion") {
      return "Usage: godislock completion bash|zsh|fish\n";
    }
    return CLI::Formatter::make_usage(app, std::move(name));
  }
};

Millis duration_option(const std::string& option, const std::string& value) {
  std::string why;
  auto d = config::parse_duration(value, &why);
  if (!d) {
    throw UsageError{
        fmt::format("invalid value '{}' for {}: {}", value, option, why)};
  }
  return *d;
}

// An exit status 0..255 given as text.
int exit_code_option(const std::string& option, const std::string& value) {
  int code = -1;
  size_t used = 0;
  try {
    code = std::stoi(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size() || code < 0 || code > 255) {
    throw UsageError{
        fmt::format("invalid value '{}' for {}: an exit status from 0 to 255",
                    value, option)};
  }
  return code;
}

// A non-empty environment variable, or nullopt.
std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    return std::nullopt;
  }
  return std::string(v);
}

// `out` from `option` when given (its text `value`), else from the variable
// `var` when set; left alone otherwise.
template <typename Given, typename Out>
void duration_setting(const Given& given, const char* option, const char* var,
                      const std::string& value, Out& out) {
  if (given(option)) {
    out = duration_option(option, value);
  } else if (auto env = env_value(var)) {
    out = duration_option(var, *env);
  }
}

// GODISLOCK_VERBOSE=1 and the like: 1/true/yes/on or 0/false/no/off.
bool env_flag(const char* name) {
  auto v = env_value(name);
  if (!v) {
    return false;
  }
  for (const char* yes : {"1", "true", "yes", "on"}) {
    if (*v == yes) {
      return true;
    }
  }
  for (const char* no : {"0", "false", "no", "off"}) {
    if (*v == no) {
      return false;
    }
  }
  throw UsageError{fmt::format(
      "invalid value '{}' for {}: use 1 or 0 (true/false, yes/no, on/off)", *v,
      name)};
}

// Whether a subcommand's option was given, by any of its names.
auto given_in(const CLI::App* sub) {
  return [sub](const char* option) { return sub->count(option) != 0; };
}

// The sentinels' login. The environment counts for a redis-sentinel:// URL
// only (it may be set for every use); an option is checked against the
// URL later, where the URL is parsed.
template <typename Given>
void finish_sentinel_login(const Given& given, ConnectionOptions& c,
                           const ConnectionInputs& in) {
  bool via_sentinel = c.url.rfind("redis-sentinel://", 0) == 0 ||
                      c.url.rfind("rediss-sentinel://", 0) == 0;
  if (given("--sentinel-user")) {
    c.sentinel_user = in.sentinel_user;
  } else if (auto env = env_value("GODISLOCK_SENTINEL_USER"); via_sentinel) {
    c.sentinel_user = env;
  }
  if (given("--sentinel-password-file")) {
    c.sentinel_password_file = in.sentinel_password_file;
  } else if (auto env = env_value("GODISLOCK_SENTINEL_PASSWORD_FILE");
             via_sentinel) {
    c.sentinel_password_file = env;
  }
}

// Applies the environment where an option was not given, then checks.
// `given(long_name)` says whether the option was on the command line.
template <typename Given>
void finish_connection(const Given& given, ConnectionOptions& c,
                       const ConnectionInputs& in) {
  if (given("--url")) {
    c.url = in.url;
  } else if (auto env = env_value("GODISLOCK_URL")) {
    c.url = *env;
  } else {
    c.url = k_default_url;
  }
  if (given("--password-file")) {
    c.password_file = in.password_file;
  } else if (auto env = env_value("GODISLOCK_PASSWORD_FILE")) {
    c.password_file = *env;
  }
  auto text = [&](const char* option, const char* var, const std::string& value,
                  std::string& out) {
    if (given(option)) {
      if (value.empty()) {
        throw UsageError{fmt::format("{} must not be empty", option)};
      }
      out = value;
    } else if (auto env = env_value(var)) {
      out = *env;
    }
  };
  std::string user;
  text("--user", "GODISLOCK_USER", in.user, user);
  if (!user.empty()) {
    c.user = user;
  }
  c.tls = in.tls || env_flag("GODISLOCK_TLS");
  c.insecure = in.insecure || env_flag("GODISLOCK_INSECURE");
  text("--cacert", "GODISLOCK_CACERT", in.cacert, c.cacert);
  text("--cacertdir", "GODISLOCK_CACERTDIR", in.cacertdir, c.cacertdir);
  text("--cert", "GODISLOCK_CERT", in.cert, c.cert);
  text("--key", "GODISLOCK_KEY", in.key, c.key);
  text("--sni", "GODISLOCK_SNI", in.sni, c.sni);
  if (given("--prefix")) {
    c.prefix = in.prefix;
  } else if (auto env = env_value("GODISLOCK_PREFIX")) {
    c.prefix = *env;
  }
  duration_setting(given, "--connect-timeout", "GODISLOCK_CONNECT_TIMEOUT",
                   in.connect_timeout, c.connect_timeout);
  if (c.connect_timeout.count() <= 0) {
    throw UsageError{"--connect-timeout must be greater than 0"};
  }
  finish_sentinel_login(given, c, in);
  if (in.verbose && in.quiet) {
    throw UsageError{"--verbose and --quiet conflict: use one of them"};
  }
  // The command line wins over the environment, and -v over -q there.
  c.verbose = in.verbose;
  c.quiet = in.quiet;
  if (!c.verbose && !c.quiet) {
    c.verbose = env_flag("GODISLOCK_VERBOSE");
    c.quiet = !c.verbose && env_flag("GODISLOCK_QUIET");
  }
}

// --limit N: a whole number from 1 to backend::k_max_limit.
unsigned limit_option(const std::string& value) {
  unsigned long n = 0;
  size_t used = 0;
  try {
    n = std::stoul(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size() || value[0] == '-' || n < 1 ||
      n > backend::k_max_limit) {
    throw UsageError{fmt::format(
        "invalid value '{}' for --limit: a number of holders from 1 to {}",
        value, backend::k_max_limit)};
  }
  return static_cast<unsigned>(n);
}

// Largest --replicas: more than any deployment has.
constexpr unsigned long k_max_replicas = 1000;

// --replicas and --replica-timeout (or their environment variables).
template <typename Given>
void finish_replicas(const Given& given, RunOptions& o, const RunInputs& in) {
  auto count = [](const char* option, const std::string& value) {
    unsigned long n = 0;
    size_t used = 0;
    try {
      n = std::stoul(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != value.size() || value[0] == '-' ||
        n > k_max_replicas) {
      throw UsageError{fmt::format(
          "invalid value '{}' for {}: a number of replicas from 0 to {}", value,
          option, k_max_replicas)};
    }
    return static_cast<unsigned>(n);
  };
  if (given("--replicas")) {
    o.replicas = count("--replicas", in.replicas);
  } else if (auto env = env_value("GODISLOCK_REPLICAS")) {
    o.replicas = count("GODISLOCK_REPLICAS", *env);
  }
  duration_setting(given, "--replica-timeout", "GODISLOCK_REPLICA_TIMEOUT",
                   in.replica_timeout, o.replica_timeout);
  if (o.replica_timeout.count() <= 0) {
    throw UsageError{"--replica-timeout must be greater than 0"};
  }
  if (given("--replica-timeout") && o.replicas == 0) {
    throw UsageError{"--replica-timeout needs --replicas N"};
  }
}

// `run`: each option, else its environment variable, else the default; then
// the checks across options. Throws UsageError.
template <typename Given>
void finish_run(const Given& given, RunOptions& o, const RunInputs& in,
                bool has_command_words) {
  finish_connection(given, o, in.connection);
  o.nonblock = in.nonblock;
  o.no_fair = in.no_fair;
  o.wait_tree = in.wait_tree;
  o.shared = in.shared;
  if (given("--name")) {
    o.name = in.name;
  }
  duration_setting(given, "--ttl", "GODISLOCK_TTL", in.ttl, o.ttl);
  if (given("--wait")) {
    o.wait = duration_option("--wait", in.wait);
  } else if (auto env = env_value("GODISLOCK_WAIT"); env && !o.nonblock) {
    o.wait = duration_option("GODISLOCK_WAIT", *env);
  }
  duration_setting(given, "--kill-after", "GODISLOCK_KILL_AFTER", in.kill_after,
                   o.kill_after);
  if (given("--kill-signal")) {
    o.kill_signal = in.kill_signal;
  } else if (auto env = env_value("GODISLOCK_KILL_SIGNAL")) {
    o.kill_signal = *env;
  }
  if (given("--conflict-exit-code")) {
    o.conflict_exit_code =
        exit_code_option("--conflict-exit-code", in.conflict_code);
  } else if (auto env = env_value("GODISLOCK_CONFLICT_EXIT_CODE")) {
    o.conflict_exit_code =
        exit_code_option("GODISLOCK_CONFLICT_EXIT_CODE", *env);
  }
  if (given("--limit")) {
    o.limit = limit_option(in.limit);
  }
  finish_replicas(given, o, in);
  if (o.nonblock && o.wait && o.wait->count() != 0) {
    throw UsageError{"--nonblock and --wait conflict: use one of them"};
  }
  if (o.shared && in.exclusive) {
    throw UsageError{"--shared and --exclusive conflict: use one of them"};
  }
  if (o.shared && given("--limit")) {
    throw UsageError{"--shared and --limit conflict: use one of them"};
  }
  if (given("--command")) {
    if (has_command_words) {
      throw UsageError{"-c and a command after -- conflict: use one of them"};
    }
    if (in.shell.empty()) {
      throw UsageError{"-c needs a non-empty shell command"};
    }
    o.shell_command = in.shell;
  } else if (o.command.empty()) {
    throw UsageError{"no command given (put it after --, or use -c)"};
  } else if (o.command[0].empty()) {
    throw UsageError{"empty command name"};
  }
}

// The fast path for `run`'s options. Building the CLI11 parser costs more
// than the rest of an uncontended run's user time put together (about 500k
// instructions: a dozen allocations per option and a check of its names
// against every option already added), so the usual command lines skip it.
// Only the plain forms are taken here, each option at most once: a known
// name alone or with "=VALUE" (long names), each option that takes a value
// followed by it. A value is taken only if it is non-empty and starts with
// none of '-', '[', '{' (which CLI11 reads as the next option, a list or
// "empty"). Anything else, including --help and any repetition, returns
// false and the caller parses the same words with CLI11, so errors and help
// come out exactly as before. For what it accepts, the result is what CLI11
// gives: each string value verbatim, each flag true.

// Which options the fast path saw, answering finish_run()'s given().
struct FastGiven {
  bool seen[k_run_option_count] = {};
  bool operator()(const char* option) const {
    int id = run_option_id(option);
    return id >= 0 && seen[id];
  }
};

bool is_plain_value(const std::string& v) {
  return !v.empty() && v[0] != '-' && v[0] != '[' && v[0] != '{';
}

// Parses words[2..] (the options of `run`) into `in`, or returns false
// having changed nothing.
bool parse_run_fast(const std::vector<std::string>& words, RunInputs& in,
                    FastGiven& given) {
  RunInputs fin;
  FastGiven fgiven;
  for (size_t i = 2; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (word.size() < 2 || word[0] != '-') {
      return false;
    }
    std::string_view name = word;
    std::optional<std::string> value;
    if (word[1] == '-') {
      if (auto eq = word.find('='); eq != std::string::npos) {
        name = name.substr(0, eq);
        value = word.substr(eq + 1);
      }
    } else if (word.size() != 2) {
      return false;  // -vq, -w5, ...
    }
    Slot slot = find_run_option(name, fin);
    if (slot.id < 0 || fgiven.seen[slot.id]) {
      return false;
    }
    fgiven.seen[slot.id] = true;
    if (slot.flag != nullptr) {
      if (value) {
        return false;  // --verbose=...
      }
      *slot.flag = true;
      continue;
    }
    if (!value) {
      if (i + 1 == words.size()) {
        return false;
      }
      value = words[++i];
    }
    if (!is_plain_value(*value)) {
      return false;
    }
    *slot.text = std::move(*value);
  }
  in = std::move(fin);
  given = fgiven;
  return true;
}

// CLI11's parser for every subcommand, and where it puts what it reads.
struct Cli11 {
  CLI::App app{
      "godislock: run a command while holding a distributed lock in "
      "Redis",
      "godislock"};
  CLI::App* run = nullptr;
  CLI::App* status = nullptr;
  CLI::App* release = nullptr;
  CLI::App* completion = nullptr;
  CLI::App* acl_rule = nullptr;
  RunInputs run_in;
  ConnectionInputs status_in, release_in;
  bool force = false;
  std::string completion_shell;
  std::string acl_prefix;
};

// Each option costs CLI11 a dozen allocations and a check of its names
// against every option already there, and building all four subcommands
// was most of an uncontended run's user time. `run` is the hot path: when
// it is argv[1], the other subcommands are still created (by name, for
// CLI11's subcommand matching) but get no options. Nothing in such a
// command line can reach them: find_command() has cut off every word that
// is not an option or an option's value, so CLI11 never sees a positional
// word that could name another subcommand. (The `if (!is_run)` blocks.)
void define(Cli11& c, Options& out, bool is_run) {
  c.app.set_version_flag("--version",
                         std::string("godislock ") + GODISLOCK_VERSION);
  c.app.require_subcommand(1);
  c.app.footer(k_exit_codes_text);
  auto formatter = std::make_shared<Formatter>();
  c.app.formatter(formatter);
  c.run = c.app.add_subcommand(
      "run", "Take the lock, run COMMAND, pass its exit status on");
  c.run->footer(k_exit_codes_text);
  c.run->formatter(formatter);
  add_options(c.run, c.run_in, k_run_options, std::size(k_run_options));
  add_connection_options(c.run, c.run_in.connection);

  c.status = c.app.add_subcommand(
      "status", "Show who holds locks: exit 0 if held, 1 if free");
  c.status->formatter(formatter);
  c.status->footer(k_status_exit_text);
  c.release = c.app.add_subcommand(
      "release", "Break a lock that another process holds (needs --force)");
  c.release->formatter(formatter);
  c.release->footer(k_release_exit_text);
  c.completion = c.app.add_subcommand(
      "completion", "Print the completion script for bash, zsh or fish");
  c.completion->formatter(formatter);
  c.acl_rule = c.app.add_subcommand(
      "acl-rule", "Print the least-privilege Redis ACL rule for godislock");
  c.acl_rule->formatter(formatter);
  if (is_run) {
    return;
  }
  c.status
      ->add_option("name", out.status.names,
                   "Locks to show (default: every lock under the prefix)")
      ->type_name("NAME");
  c.status->add_flag("--json", out.status.json,
                     "Print a JSON array, one object per lock (see "
                     "godislock(1) for the schema)");
  add_connection_options(c.status, c.status_in);
  c.release->add_option("name", out.release.name, "The lock to break")
      ->type_name("NAME");
  c.release->add_flag("--force", c.force,
                      "Really break it: its holders lose it, and their "
                      "commands are stopped at their next refresh");
  add_connection_options(c.release, c.release_in);
  c.completion->add_option("shell", c.completion_shell, "bash, zsh or fish")
      ->type_name("SHELL");
  c.acl_rule
      ->add_option("--prefix", c.acl_prefix,
                   "Key namespace (env GODISLOCK_PREFIX; default "
                   "\"godislock:\")")
      ->type_name("STRING");
  c.acl_rule->add_flag("--read-only", out.acl_rule.read_only,
                       "Only what status needs to look (no run, no release)");
}

// Parses `words`; false when help or version was asked for (out.action and
// out.text say which). Throws UsageError.
bool parse_words(Cli11& c, const std::vector<std::string>& words,
                 Options& out) {
  std::vector<const char*> cargv;
  for (const auto& a : words) {
    cargv.push_back(a.c_str());
  }
  try {
    c.app.parse(static_cast<int>(cargv.size()), cargv.data());
    return true;
  } catch (const CLI::CallForHelp&) {
    out.action = Options::Action::show_help;
    auto parsed = c.app.get_subcommands();
    CLI::App* which = parsed.empty() ? &c.app : parsed.front();
    out.text = which->help();
    return false;
  } catch (const CLI::CallForVersion&) {
    out.action = Options::Action::show_version;
    out.text = c.app.version();
    return false;
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    if (msg.empty() || e.get_name() == "RequiredError") {
      msg = "missing subcommand (try 'godislock run --help')";
    }
    // CLI11 writes sentences; our messages are lower case, like every
    // other "godislock: error:" line.
    if (msg.size() > 1 && msg[0] >= 'A' && msg[0] <= 'Z' &&
        !(msg[1] >= 'A' && msg[1] <= 'Z')) {
      msg[0] = static_cast<char>(msg[0] - 'A' + 'a');
    }
    throw UsageError{msg};
  }
}

// The subcommand CLI11 found, with its checks. Throws UsageError.
void finish_parsed(Cli11& c, Options& out, bool has_command_words) {
  if (c.completion->parsed()) {
    auto script = completion_script(c.completion_shell);
    if (!script) {
      throw UsageError{
          c.completion_shell.empty()
              ? fmt::format("completion needs a shell: {}", k_completion_shells)
              : fmt::format("unknown shell '{}' for completion (use {})",
                            c.completion_shell, k_completion_shells)};
    }
    out.action = Options::Action::show_completion;
    out.text = std::string(*script);
  } else if (c.acl_rule->parsed()) {
    out.action = Options::Action::acl_rule;
    if (c.acl_rule->count("--prefix") != 0) {
      out.acl_rule.prefix = c.acl_prefix;
    } else if (auto env = env_value("GODISLOCK_PREFIX")) {
      out.acl_rule.prefix = *env;
    }
  } else if (c.status->parsed()) {
    out.action = Options::Action::status;
    finish_connection(given_in(c.status), out.status, c.status_in);
  } else if (c.release->parsed()) {
    out.action = Options::Action::release;
    ReleaseOptions& ro = out.release;
    finish_connection(given_in(c.release), ro, c.release_in);
    if (ro.name.empty()) {
      throw UsageError{"release needs the name of a lock"};
    }
    if (!c.force) {
      throw UsageError{fmt::format(
          "release breaks lock '{}' for whoever holds it: add --force to do "
          "it",
          ro.name)};
    }
  } else {
    finish_run(given_in(c.run), out.run, c.run_in, has_command_words);
  }
}

}  // namespace

Options parse(int argc, const char* const* argv, Parser parser) {
  std::vector<std::string> args(argv, argv + argc);
  Options out;
  RunOptions& o = out.run;

  // Split off the command before CLI11 sees it: every word after it must
  // reach the child byte for byte, even "--ttl".
  std::vector<std::string> cli_args = args;
  bool has_command_words = false;
  const bool is_run = args.size() >= 2 && args[1] == "run";
  if (is_run) {
    bool dashdash = false;
    size_t at = find_command(args, 2, &dashdash);
    if (at < args.size()) {
      cli_args.assign(args.begin(), args.begin() + static_cast<long>(at));
      o.command.assign(
          args.begin() + static_cast<long>(at) + (dashdash ? 1 : 0),
          args.end());
      has_command_words = dashdash || !o.command.empty();
    }
  }
  if (parser == Parser::fast_when_plain && is_run) {
    RunInputs in;
    FastGiven given;
    if (parse_run_fast(cli_args, in, given)) {
      finish_run(given, o, in, has_command_words);
      return out;
    }
  }
  Cli11 c;
  define(c, out, is_run);
  if (parse_words(c, cli_args, out)) {
    finish_parsed(c, out, has_command_words);
  }
  return out;
}

}  // namespace godislock::cli
