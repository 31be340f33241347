// SPDX-License-Identifier: MIT
// The program's entry (run): parses the command line and dispatches to
// `run` (app/run.cpp), `status` and `release` (app/inspect.cpp); and what
// they share: the endpoint with its password, name checks, exit codes.
#include "app/app.hpp"

#include "app/common.hpp"
#include "app/exit_code.hpp"
#include "cli/options.hpp"
#include "config/duration.hpp"
#include "config/url.hpp"
#include "signals/signals.hpp"
#include "supervisor/supervisor.hpp"
#include "util/fd.hpp"
#include "util/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace godislock::app {

namespace {

using cli::UsageError;
using Millis = std::chrono::milliseconds;
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

std::string read_password_file(const std::string& path) {
  auto fail = [&](int err) {
    return UsageError{fmt::format("cannot read --password-file '{}': {}", path,
                                  std::strerror(err))};
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
      throw UsageError{fmt::format(
          "--password-file '{}' is too large for a password", path)};
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

}  // namespace

config::Endpoint endpoint_for(const cli::ConnectionOptions& o) {
  util::set_log_level(o.verbose ? util::LogLevel::verbose
                      : o.quiet ? util::LogLevel::quiet
                                : util::LogLevel::normal);
  std::string why;
  auto endpoint = config::parse_url(o.url, &why);
  if (!endpoint) {
    bool etcd =
        o.url.rfind("etcd://", 0) == 0 || o.url.rfind("etcds://", 0) == 0;
    throw UsageError{
        fmt::format("invalid {} URL: {}", etcd ? "etcd" : "Redis", why)};
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
      if (endpoint->kind == config::Endpoint::Kind::etcd &&
          std::string_view(var) == "REDISCLI_AUTH") {
        continue;  // redis-cli's variable, not etcd's
      }
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

// Prints help or version text; false (errno set) when stdout is closed or
// a broken pipe.
bool print_stdout(std::string text) {
  if (signals::was_closed_at_start(STDOUT_FILENO)) {
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
    auto st = signals::init();
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
