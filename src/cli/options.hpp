// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace godislock::cli {

using Millis = std::chrono::milliseconds;

// How to reach Redis and what to say; shared by every subcommand that talks
// to Redis. Each comes from its option, else its environment variable
// (GODISLOCK_URL, GODISLOCK_PREFIX, ...), else the default.
struct ConnectionOptions {
  std::string url;  // --url, else $GODISLOCK_URL, else the default
  std::optional<std::string> password_file;
  std::optional<std::string> user;  // --user: the ACL user, over the URL's
  // TLS (redis-cli's option names). --tls turns it on for redis:// URLs;
  // the rest apply only with TLS on (app checks that).
  bool tls = false;
  std::string cacert, cacertdir, cert, key, sni;
  bool insecure = false;
  std::string prefix = "godislock:";
  Millis connect_timeout{5000};
  // The sentinels' login, for a redis-sentinel:// URL (the URL's is the
  // master's).
  std::optional<std::string> sentinel_user;
  std::optional<std::string> sentinel_password_file;
  bool verbose = false;
  bool quiet = false;
};

// What `godislock run` was asked to do, as parsed from argv and the
// environment. A plain value; cli/ does no I/O beyond reading env vars.
struct RunOptions : ConnectionOptions {
  std::optional<std::string> name;
  Millis ttl{30000};
  std::optional<Millis> wait;  // nullopt: wait forever
  bool nonblock = false;
  bool no_fair = false;
  unsigned limit = 1;   // --limit
  bool shared = false;  // --shared
  int conflict_exit_code = 75;
  std::string kill_signal = "TERM";
  std::optional<Millis> kill_after;
  bool wait_tree = false;  // hold the lock until every descendant exited
  unsigned replicas = 0;   // --replicas: WAIT for N replicas
  Millis replica_timeout{1000};
  std::optional<std::string> shell_command;  // -c
  std::vector<std::string> command;          // after --
};

// `godislock status [NAME...]`: no name lists every lock under the prefix.
struct StatusOptions : ConnectionOptions {
  std::vector<std::string> names;
  bool json = false;
};

// `godislock release --force NAME`.
struct ReleaseOptions : ConnectionOptions {
  std::string name;
};

// `godislock acl-rule [--prefix P] [--read-only]`.
struct AclRuleOptions {
  std::string prefix = "godislock:";
  bool read_only = false;
};

struct Options {
  // show_completion: `godislock completion SHELL`, text is the script.
  enum class Action {
    run,
    status,
    release,
    acl_rule,
    show_help,
    show_version,
    show_completion
  };
  Action action = Action::run;
  std::string text;  // help, version or completion text to print
  RunOptions run;
  StatusOptions status;
  ReleaseOptions release;
  AclRuleOptions acl_rule;
};

// Thrown for any usage error; the message names the option and the value.
struct UsageError {
  std::string message;
};

inline constexpr const char* k_default_url = "redis://127.0.0.1:6379";

// Which parser reads `run`'s options: the plain forms of the usual command
// lines are read without building CLI11's parser (it costs more than the
// rest of an uncontended run's user time); anything else goes to CLI11.
// cli11_only exists for the tests that check both give the same result.
enum class Parser { fast_when_plain, cli11_only };

// Parses the command line. Throws UsageError.
Options parse(int argc, const char* const* argv,
              Parser parser = Parser::fast_when_plain);

}  // namespace godislock::cli
