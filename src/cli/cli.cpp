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
#include <cstring>
#include <iterator>
#include <optional>
#include <set>
#include <string>


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

// Options of `run` that take a value, for finding where the command starts
// when it is given without `--` (flock style: options stop at the first
// non-option word).
const std::set<std::string> k_value_long = {
    "--name",   "--ttl",           "--wait",            "--timeout",
    "--conflict-exit-code",        "--url",             "--password-file",
    "--prefix", "--connect-timeout", "--kill-signal",   "--kill-after",
    "--command", "--limit"};
const std::string k_value_short = "wEc";

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
      bool takes_value =
          a.find('=') == std::string::npos && k_value_long.count(a) != 0;
      i += takes_value ? 2 : 1;
      continue;
    }
    if (a.size() > 1 && a[0] == '-') {
      size_t step = 1;
      for (size_t k = 1; k < a.size(); ++k) {
        if (k_value_short.find(a[k]) != std::string::npos) {
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
  std::string make_usage(const CLI::App* app,
                         std::string name) const override {
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
    if (app->get_name() == "completion") {  // issue 6
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
    throw UsageError{fmt::format(
        "invalid value '{}' for {}: an exit status from 0 to 255", value,
        option)};
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
      "invalid value '{}' for {}: use 1 or 0 (true/false, yes/no, on/off)",
      *v, name)};
}

// The connection options' raw values, as every subcommand takes them.
struct ConnectionInputs {
  std::string url, password_file, connect_timeout;
};

void add_connection_options(CLI::App* sub, ConnectionOptions& c,
                            ConnectionInputs& in) {
  sub->add_option("--url", in.url,
                  "redis://[user[:password]@]host[:port][/db] or "
                  "unix:///path.sock[?db=N] (env GODISLOCK_URL; default "
                  "redis://127.0.0.1:6379)")
      ->type_name("URL");
  sub->add_option("--password-file", in.password_file,
                  "Read the Redis password from FILE (env "
                  "GODISLOCK_PASSWORD_FILE; else env GODISLOCK_PASSWORD or "
                  "REDISCLI_AUTH)")
      ->type_name("FILE");
  sub->add_option("--prefix", c.prefix,
                  "Key namespace (env GODISLOCK_PREFIX; default "
                  "\"godislock:\")")
      ->type_name("STRING");
  sub->add_option("--connect-timeout", in.connect_timeout,
                  "Deadline for connecting and for each Redis call; also "
                  "how long an outage is tolerated while waiting (env "
                  "GODISLOCK_CONNECT_TIMEOUT; default 5s)")
      ->type_name("DURATION");
  sub->add_flag("-v,--verbose", c.verbose,
                "Say what happens, never passwords (env GODISLOCK_VERBOSE)");
  sub->add_flag("-q,--quiet", c.quiet,
                "Print errors only (env GODISLOCK_QUIET)");
}

// Whether a subcommand's option was given, by any of its names.
auto given_in(const CLI::App* sub) {
  return [sub](const char* option) { return sub->count(option) != 0; };
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
  if (!given("--prefix")) {
    if (auto env = env_value("GODISLOCK_PREFIX")) {
      c.prefix = *env;
    }
  }
  if (given("--connect-timeout")) {
    c.connect_timeout = duration_option("--connect-timeout", in.connect_timeout);
  } else if (auto env = env_value("GODISLOCK_CONNECT_TIMEOUT")) {
    c.connect_timeout = duration_option("GODISLOCK_CONNECT_TIMEOUT", *env);
  }
  if (c.connect_timeout.count() <= 0) {
    throw UsageError{"--connect-timeout must be greater than 0"};
  }
  if (c.verbose && c.quiet) {
    throw UsageError{"--verbose and --quiet conflict: use one of them"};
  }
  // The command line wins over the environment, and -v over -q there.
  if (!c.verbose && !c.quiet) {
    c.verbose = env_flag("GODISLOCK_VERBOSE");
    c.quiet = !c.verbose && env_flag("GODISLOCK_QUIET");
  }
}

// The raw values of `run`'s options that are checked after parsing (the
// others go straight into RunOptions).
struct RunInputs {
  std::string ttl, wait, kill_after, conflict_code;
  std::string name, shell;
  bool exclusive = false, close_fd = false;
  ConnectionInputs connection;
};

// `run`: each option, else its environment variable, else the default; then
// the checks across options. Throws UsageError.
template <typename Given>
void finish_run(const Given& given, RunOptions& o, const RunInputs& in,
                bool has_command_words) {
  finish_connection(given, o, in.connection);
  if (given("--name")) {
    o.name = in.name;
  }
  if (given("--ttl")) {
    o.ttl = duration_option("--ttl", in.ttl);
  } else if (auto env = env_value("GODISLOCK_TTL")) {
    o.ttl = duration_option("GODISLOCK_TTL", *env);
  }
  if (given("--wait")) {
    o.wait = duration_option("--wait", in.wait);
  } else if (auto env = env_value("GODISLOCK_WAIT"); env && !o.nonblock) {
    o.wait = duration_option("GODISLOCK_WAIT", *env);
  }
  if (given("--kill-after")) {
    o.kill_after = duration_option("--kill-after", in.kill_after);
  } else if (auto env = env_value("GODISLOCK_KILL_AFTER")) {
    o.kill_after = duration_option("GODISLOCK_KILL_AFTER", *env);
  }
  if (!given("--kill-signal")) {
    if (auto env = env_value("GODISLOCK_KILL_SIGNAL")) {
      o.kill_signal = *env;
    }
  }
  if (given("--conflict-exit-code")) {
    o.conflict_exit_code = exit_code_option("--conflict-exit-code",
                                            in.conflict_code);
  } else if (auto env = env_value("GODISLOCK_CONFLICT_EXIT_CODE")) {
    o.conflict_exit_code =
        exit_code_option("GODISLOCK_CONFLICT_EXIT_CODE", *env);
  }
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
// long name alone or with "=VALUE", or a single-letter short option alone,
// each option that takes a value followed by it. A value is taken only if
// it is non-empty and starts with none of '-', '[', '{' (which CLI11 reads
// as the next option, a list or "empty"). Anything else, including --help,
// --limit (CLI11 checks its range) and any repetition, returns false and the
// caller parses the same words with CLI11, so errors and help come out
// exactly as before. For what it accepts, the result is what CLI11 gives:
// each string value verbatim, each flag true.
struct FastOption {
  // The long name that finish_run() asks about comes first.
  const char* names[4];
  // Where the value goes, as CLI11 stores it: a string for an option that
  // takes a value, else a flag.
  std::string* (*text)(RunOptions&, RunInputs&);
  bool* (*flag)(RunOptions&, RunInputs&);
};

using Fo = RunOptions;
using Fi = RunInputs;
const FastOption k_fast_options[] = {
    {{"--name"}, [](Fo&, Fi& i) { return &i.name; }, nullptr},
    {{"--ttl"}, [](Fo&, Fi& i) { return &i.ttl; }, nullptr},
    {{"--wait", "-w", "--timeout"}, [](Fo&, Fi& i) { return &i.wait; },
     nullptr},
    {{"--conflict-exit-code", "-E"},
     [](Fo&, Fi& i) { return &i.conflict_code; }, nullptr},
    {{"--kill-signal"}, [](Fo& o, Fi&) { return &o.kill_signal; }, nullptr},
    {{"--kill-after"}, [](Fo&, Fi& i) { return &i.kill_after; }, nullptr},
    {{"--command", "-c"}, [](Fo&, Fi& i) { return &i.shell; }, nullptr},
    {{"--url"}, [](Fo&, Fi& i) { return &i.connection.url; }, nullptr},
    {{"--password-file"},
     [](Fo&, Fi& i) { return &i.connection.password_file; }, nullptr},
    {{"--prefix"}, [](Fo& o, Fi&) { return &o.prefix; }, nullptr},
    {{"--connect-timeout"},
     [](Fo&, Fi& i) { return &i.connection.connect_timeout; }, nullptr},
    {{"--nonblock", "-n", "--nb", "--no-wait"}, nullptr,
     [](Fo& o, Fi&) { return &o.nonblock; }},
    {{"--no-fair"}, nullptr, [](Fo& o, Fi&) { return &o.no_fair; }},
    {{"--wait-tree"}, nullptr, [](Fo& o, Fi&) { return &o.wait_tree; }},
    {{"--shared", "-s"}, nullptr, [](Fo& o, Fi&) { return &o.shared; }},
    {{"--exclusive", "-x"}, nullptr, [](Fo&, Fi& i) { return &i.exclusive; }},
    {{"--close", "-o"}, nullptr, [](Fo&, Fi& i) { return &i.close_fd; }},
    {{"--verbose", "-v"}, nullptr, [](Fo& o, Fi&) { return &o.verbose; }},
    {{"--quiet", "-q"}, nullptr, [](Fo& o, Fi&) { return &o.quiet; }},
};
constexpr size_t k_fast_count = std::size(k_fast_options);

bool is_plain_value(const std::string& v) {
  return !v.empty() && v[0] != '-' && v[0] != '[' && v[0] != '{';
}

// The index in k_fast_options of the option called `name`, or k_fast_count.
size_t find_fast_option(const std::string& name) {
  for (size_t k = 0; k < k_fast_count; ++k) {
    for (const char* n : k_fast_options[k].names) {
      if (n != nullptr && name == n) {
        return k;
      }
    }
  }
  return k_fast_count;
}

// Which options the fast path saw, answering finish_run()'s given().
struct FastGiven {
  bool seen[k_fast_count] = {};
  bool operator()(const char* option) const {
    for (size_t k = 0; k < k_fast_count; ++k) {
      if (std::strcmp(k_fast_options[k].names[0], option) == 0) {
        return seen[k];
      }
    }
    return false;  // --limit: never taken here
  }
};

// Parses words[2..] (the options of `run`) into o and in, or returns false
// having changed neither.
bool parse_run_fast(const std::vector<std::string>& words, RunOptions& o,
                    RunInputs& in, FastGiven& given) {
  RunOptions fo = o;
  RunInputs fin;
  FastGiven fgiven;
  for (size_t i = 2; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (word.size() < 2 || word[0] != '-') {
      return false;
    }
    std::string name = word;
    std::optional<std::string> value;
    bool is_long = word[1] == '-';
    if (is_long) {
      if (auto eq = word.find('='); eq != std::string::npos) {
        name = word.substr(0, eq);
        value = word.substr(eq + 1);
      }
    } else if (word.size() != 2) {
      return false;  // -vq, -w5, ...
    }
    size_t index = find_fast_option(name);
    if (index == k_fast_count || fgiven.seen[index]) {
      return false;
    }
    fgiven.seen[index] = true;
    const FastOption& f = k_fast_options[index];
    if (f.flag != nullptr) {
      if (value) {
        return false;  // --verbose=...
      }
      *f.flag(fo, fin) = true;
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
    *f.text(fo, fin) = std::move(*value);
  }
  o = std::move(fo);
  in = std::move(fin);
  given = fgiven;
  return true;
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
      o.command.assign(args.begin() + static_cast<long>(at) + (dashdash ? 1 : 0),
                       args.end());
      has_command_words = dashdash || !o.command.empty();
    }
  }

  if (parser == Parser::fast_when_plain && is_run) {
    RunInputs in;
    FastGiven given;
    if (parse_run_fast(cli_args, o, in, given)) {
      finish_run(given, o, in, has_command_words);
      return out;
    }
  }

  // Each option costs CLI11 a dozen allocations and a check of its names
  // against every option already there, and building all four subcommands
  // was most of an uncontended run's user time. `run` is the hot path: when
  // it is argv[1], the other subcommands are still created (by name, for
  // CLI11's subcommand matching) but get no options. Nothing in such a
  // command line can reach them: find_command() has cut off every word that
  // is not an option or an option's value, so CLI11 never sees a positional
  // word that could name another subcommand. (The `if (!is_run)` blocks.)
  CLI::App app{"godislock: run a command while holding a distributed lock "
               "in Redis",
               "godislock"};
  app.set_version_flag("--version", std::string("godislock ") +
                                        GODISLOCK_VERSION);
  app.require_subcommand(1);
  app.footer(k_exit_codes_text);
  CLI::App* run = app.add_subcommand(
      "run", "Take the lock, run COMMAND, pass its exit status on");
  run->footer(k_exit_codes_text);
  auto formatter = std::make_shared<Formatter>();
  app.formatter(formatter);
  run->formatter(formatter);

  RunInputs run_in;
  run->add_option("--name", run_in.name,
                  "Lock name (default: derived from the command, see -v)")
      ->type_name("NAME");
  run->add_option("--ttl", run_in.ttl,
                  "Lease if godislock dies; refreshed every ttl/3 "
                  "(env GODISLOCK_TTL; default 30s; at least 3ms, and 7ms to "
                  "leave room for --kill-after)")
      ->type_name("DURATION");
  run->add_option("-w,--wait,--timeout", run_in.wait,
                  "Give up waiting after DURATION (env GODISLOCK_WAIT; "
                  "default: wait forever; 0: one try)")
      ->type_name("DURATION");
  run->add_flag("-n,--nonblock,--nb,--no-wait", o.nonblock,
                "Fail at once if the lock is held (same as --wait 0)");
  run->add_flag("--no-fair", o.no_fair,
                "Race for the lock instead of queueing in arrival order "
                "(every release then wakes every such waiter)");
  run->add_option("-E,--conflict-exit-code", run_in.conflict_code,
                  "Exit code when the lock is not acquired (env "
                  "GODISLOCK_CONFLICT_EXIT_CODE; default 75)")
      ->type_name("N");
  run->add_option("--kill-signal", o.kill_signal,
                  "Signal sent to the command's process tree when the lock "
                  "is lost (env GODISLOCK_KILL_SIGNAL; default TERM)")
      ->type_name("SIGNAL");
  run->add_option("--kill-after", run_in.kill_after,
                  "Then SIGKILL after DURATION (env GODISLOCK_KILL_AFTER; "
                  "default: min(5s, ttl/3))")
      ->type_name("DURATION");
  run->add_flag("--wait-tree", o.wait_tree,
                "Hold the lock until every process the command started has "
                "exited, not only the command itself");
  run->add_option("-c,--command", run_in.shell,
                  "Run SHELL COMMAND with /bin/sh -c (like flock -c)")
      ->type_name("SHELL COMMAND");
  run->add_option("--limit", o.limit,
                  "Counted lock: up to N holders at once, each with its own "
                  "fence and slot (GODISLOCK_SLOT); all its users must give "
                  "the same N (default 1)")
      ->check(CLI::Range(1u, backend::k_max_limit).description(""))
      ->type_name("N");
  run->add_flag("-s,--shared", o.shared,
                "Shared lock (like flock -s): holders may overlap each "
                "other, never an exclusive holder");
  run->add_flag("-x,--exclusive", run_in.exclusive,
                "Exclusive lock (the default; like flock -x)");
  run->add_flag("-o,--close", run_in.close_fd,
                "Accepted for flock(1) compatibility (no lock fd is ever "
                "passed to the command)");
  add_connection_options(run, o, run_in.connection);

  // --- `godislock status [NAME...]` and `godislock release --force NAME`
  StatusOptions& so = out.status;
  CLI::App* status = app.add_subcommand(
      "status", "Show who holds locks: exit 0 if held, 1 if free");
  status->formatter(formatter);
  status->footer(k_status_exit_text);
  ConnectionInputs status_in;
  if (!is_run) {
    status->add_option("name", so.names,
                       "Locks to show (default: every lock under the prefix)")
        ->type_name("NAME");
    status->add_flag("--json", so.json,
                     "Print a JSON array, one object per lock (see "
                     "godislock(1) for the schema)");
    add_connection_options(status, so, status_in);
  }

  ReleaseOptions& ro = out.release;
  bool force = false;
  CLI::App* release = app.add_subcommand(
      "release", "Break a lock that another process holds (needs --force)");
  release->formatter(formatter);
  release->footer(k_release_exit_text);
  ConnectionInputs release_in;
  if (!is_run) {
    release->add_option("name", ro.name, "The lock to break")
        ->type_name("NAME");
    release->add_flag("--force", force,
                      "Really break it: its holders lose it, and their "
                      "commands are stopped at their next refresh");
    add_connection_options(release, ro, release_in);
  }

  // --- `godislock completion SHELL` (issue 6) ---
  std::string completion_shell;
  CLI::App* completion = app.add_subcommand(
      "completion", "Print the completion script for bash, zsh or fish");
  completion->formatter(formatter);
  if (!is_run) {
    completion->add_option("shell", completion_shell, "bash, zsh or fish")
        ->type_name("SHELL");
  }
  // --- end completion ---

  std::vector<const char*> cargv;
  for (const auto& a : cli_args) {
    cargv.push_back(a.c_str());
  }
  try {
    app.parse(static_cast<int>(cargv.size()), cargv.data());
  } catch (const CLI::CallForHelp&) {
    out.action = Options::Action::show_help;
    auto parsed = app.get_subcommands();
    CLI::App* which = parsed.empty() ? &app : parsed.front();
    out.text = which->help();
    return out;
  } catch (const CLI::CallForVersion&) {
    out.action = Options::Action::show_version;
    out.text = app.version();
    return out;
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

  // --- `godislock completion SHELL` (issue 6) ---
  if (completion->parsed()) {
    auto script = completion_script(completion_shell);
    if (!script) {
      throw UsageError{
          completion_shell.empty()
              ? fmt::format("completion needs a shell: {}",
                            k_completion_shells)
              : fmt::format("unknown shell '{}' for completion (use {})",
                            completion_shell, k_completion_shells)};
    }
    out.action = Options::Action::show_completion;
    out.text = std::string(*script);
    return out;
  }
  // --- end completion ---

  if (status->parsed()) {
    out.action = Options::Action::status;
    finish_connection(given_in(status), so, status_in);
    return out;
  }
  if (release->parsed()) {
    out.action = Options::Action::release;
    finish_connection(given_in(release), ro, release_in);
    if (ro.name.empty()) {
      throw UsageError{"release needs the name of a lock"};
    }
    if (!force) {
      throw UsageError{fmt::format(
          "release breaks lock '{}' for whoever holds it: add --force to do "
          "it",
          ro.name)};
    }
    return out;
  }

  finish_run(given_in(run), o, run_in, has_command_words);
  return out;
}

}  // namespace godislock::cli
