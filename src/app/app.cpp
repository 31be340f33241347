// SPDX-License-Identifier: MIT
// The program's entry (run): parses the command line and dispatches to
// `run` (app/run.cpp), `status` and `release` (app/inspect.cpp); and what
// they share: the endpoint with its password, name checks, exit codes.
#include "app/app.hpp"

#include "app/common.hpp"
#include "app/exit_code.hpp"
#include "backend/redis_scripts.hpp"
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

std::string read_password_file(const std::string& path,
                               const char* option = "--password-file") {
  auto fail = [&](int err) {
    return UsageError{fmt::format("cannot read {} '{}': {}", option, path,
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
      throw UsageError{
          fmt::format("{} '{}' is too large for a password", option, path)};
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
    throw UsageError{fmt::format("{} '{}' is empty", option, path)};
  }
  return pw;
}

// The TLS options over what the URL says. Every option but --tls needs TLS
// on: a CA or certificate given for a plaintext URL is a mistake to point
// out, not to ignore.
void apply_tls(const cli::ConnectionOptions& o, config::Endpoint& ep) {
  config::TlsSettings& tls = ep.tls;
  if (o.tls) {
    tls.enabled = true;
  }
  const std::pair<const char*, const std::string*> files[] = {
      {"--cacert", &o.cacert},
      {"--cacertdir", &o.cacertdir},
      {"--cert", &o.cert},
      {"--key", &o.key},
      {"--sni", &o.sni}};
  for (const auto& [option, value] : files) {
    if (!value->empty() && !tls.enabled) {
      throw UsageError{fmt::format(
          "{} is for TLS: use a rediss:// URL or add --tls", option)};
    }
  }
  if (o.insecure && !tls.enabled) {
    throw UsageError{"--insecure is for TLS: use a rediss:// URL or add --tls"};
  }
  if (o.cert.empty() != o.key.empty()) {
    throw UsageError{o.cert.empty() ? "--key needs --cert (the certificate "
                                      "that goes with the key)"
                                    : "--cert needs --key (the certificate's "
                                      "private key)"};
  }
  tls.ca_file = o.cacert;
  tls.ca_dir = o.cacertdir;
  tls.cert_file = o.cert;
  tls.key_file = o.key;
  tls.sni = o.sni;
  tls.insecure = o.insecure;
  if (auto problem = config::endpoint_problem(ep)) {
    throw UsageError{*problem};
  }
  if (tls.insecure) {
    GODISLOCK_WARN(
        "--insecure: the server's certificate and name are not verified; "
        "anyone on the network path can pose as {}",
        ep.redacted());
  }
}

// The sentinels' login (redis-sentinel://): their own options only; the
// URL's user and password are the master's.
void add_sentinel_login(const cli::ConnectionOptions& o,
                        config::Endpoint* endpoint) {
  if (!endpoint->sentinel) {
    if (o.sentinel_user || o.sentinel_password_file) {
      throw UsageError{
          fmt::format("--sentinel-{} needs a redis-sentinel:// URL",
                      o.sentinel_user ? "user" : "password-file")};
    }
    return;
  }
  endpoint->sentinel->user = o.sentinel_user.value_or("");
  if (o.sentinel_password_file) {
    endpoint->sentinel->password = read_password_file(
        *o.sentinel_password_file, "--sentinel-password-file");
  } else if (const char* v = std::getenv("GODISLOCK_SENTINEL_PASSWORD");
             v != nullptr) {
    endpoint->sentinel->password = v;
  }
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
  if (o.user) {
    endpoint->user = *o.user;
  }
  apply_tls(o, *endpoint);
  add_sentinel_login(o, &*endpoint);
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

// Prints help, version, completion or ACL rule text: 0, or (with one
// error line) 70 when stdout is closed or a broken pipe.
int print_stdout(std::string text) {
  if (signals::was_closed_at_start(STDOUT_FILENO)) {
    errno = EBADF;
  } else {
    if (text.empty() || text.back() != '\n') {
      text.push_back('\n');
    }
    if (util::write_all(STDOUT_FILENO, text.data(), text.size())) {
      return 0;
    }
  }
  GODISLOCK_ERROR("cannot write to standard output: {}", std::strerror(errno));
  return k_exit_internal;
}

}  // namespace

int acl_rule_command(const cli::AclRuleOptions& o) {
  check_prefix(o.prefix);
  std::string why;
  auto rule = backend::acl_rule(o.prefix, o.read_only, &why);
  if (!rule) {
    throw UsageError{fmt::format("--prefix '{}': {}", o.prefix, why)};
  }
  return print_stdout(*rule);
}

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
        return print_stdout(opts.text);
      case cli::Options::Action::status:
        return status_command(opts.status);
      case cli::Options::Action::release:
        return release_command(opts.release);
      case cli::Options::Action::acl_rule:
        return acl_rule_command(opts.acl_rule);
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
