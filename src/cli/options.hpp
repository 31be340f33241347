// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace godislock::cli {

using Millis = std::chrono::milliseconds;

// What `godislock run` was asked to do, as parsed from argv and the
// environment. A plain value; cli/ does no I/O beyond reading env vars.
struct RunOptions {
  std::optional<std::string> name;
  Millis ttl{30000};
  std::optional<Millis> wait;  // nullopt: wait forever
  bool nonblock = false;
  bool no_fair = false;
  unsigned limit = 1;   // --limit
  bool shared = false;  // --shared
  int conflict_exit_code = 75;
  std::string url;  // --url, else $GODISLOCK_URL, else the default
  std::optional<std::string> password_file;
  std::string prefix = "godislock:";
  Millis connect_timeout{5000};
  std::string kill_signal = "TERM";
  std::optional<Millis> kill_after;
  bool verbose = false;
  bool quiet = false;
  std::optional<std::string> shell_command;  // -c
  std::vector<std::string> command;          // after --
};

struct Options {
  // show_completion: `godislock completion SHELL`, text is the script.
  enum class Action { run, show_help, show_version, show_completion };
  Action action = Action::run;
  std::string text;  // help, version or completion text to print
  RunOptions run;
};

// Thrown for any usage error; the message names the option and the value.
struct UsageError {
  std::string message;
};

inline constexpr const char* k_default_url = "redis://127.0.0.1:6379";

// Parses the command line. Throws UsageError.
Options parse(int argc, const char* const* argv);

}  // namespace godislock::cli
