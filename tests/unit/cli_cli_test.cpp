// SPDX-License-Identifier: MIT
#include "cli/options.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace {

using godislock::cli::k_default_url;
using godislock::cli::Millis;
using godislock::cli::Options;
using godislock::cli::parse;
using godislock::cli::UsageError;
using Words = std::vector<std::string>;

using namespace std::string_literals;

// Parses "godislock" followed by `words`.
Options parse_words(
    const Words& words,
    godislock::cli::Parser parser = godislock::cli::Parser::fast_when_plain) {
  Words all = {"godislock"};
  all.insert(all.end(), words.begin(), words.end());
  std::vector<const char*> argv;
  for (const auto& w : all) {
    argv.push_back(w.c_str());
  }
  argv.push_back(nullptr);
  return parse(static_cast<int>(all.size()), argv.data(), parser);
}

// What either parser made of "godislock" + `words`: the run options as
// text, or the usage error's message.
std::string outcome(const Words& words, godislock::cli::Parser parser) {
  try {
    Options out = parse_words(words, parser);
    const auto& o = out.run;
    std::string text = "action=" + std::to_string(static_cast<int>(out.action));
    text +=
        " url=" + o.url + " pwfile=" + o.password_file.value_or("-") +
        " prefix=" + o.prefix +
        " ct=" + std::to_string(o.connect_timeout.count()) +
        " v=" + std::to_string(o.verbose) + " q=" + std::to_string(o.quiet) +
        " name=" + o.name.value_or("-") +
        " ttl=" + std::to_string(o.ttl.count()) +
        " wait=" + (o.wait ? std::to_string(o.wait->count()) : "-") +
        " nb=" + std::to_string(o.nonblock) +
        " nofair=" + std::to_string(o.no_fair) +
        " tree=" + std::to_string(o.wait_tree) +
        " limit=" + std::to_string(o.limit) +
        " shared=" + std::to_string(o.shared) +
        " E=" + std::to_string(o.conflict_exit_code) + " sig=" + o.kill_signal +
        " ka=" + (o.kill_after ? std::to_string(o.kill_after->count()) : "-") +
        " c=" + o.shell_command.value_or("-") + " cmd=";
    for (const auto& w : o.command) {
      text += "[" + w + "]";
    }
    return text;
  } catch (const UsageError& e) {
    return "usage error: " + e.message;
  }
}

// The UsageError message for `words`; fails the test when none is thrown.
std::string usage_error(const Words& words) {
  try {
    parse_words(words);
  } catch (const UsageError& e) {
    EXPECT_FALSE(e.message.empty());
    return e.message;
  } catch (...) {
    ADD_FAILURE() << "an exception other than UsageError";
    return "";
  }
  std::string joined;
  for (const auto& w : words) {
    joined += " '" + w + "'";
  }
  ADD_FAILURE() << "no UsageError for" << joined;
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Keeps the environment variables the parser reads out of the tests' way.
class CliTest : public ::testing::Test {
 protected:
  static constexpr const char* k_vars[] = {"GODISLOCK_URL",
                                           "GODISLOCK_PREFIX",
                                           "GODISLOCK_PASSWORD_FILE",
                                           "GODISLOCK_CONNECT_TIMEOUT",
                                           "GODISLOCK_VERBOSE",
                                           "GODISLOCK_QUIET",
                                           "GODISLOCK_TTL",
                                           "GODISLOCK_WAIT",
                                           "GODISLOCK_KILL_SIGNAL",
                                           "GODISLOCK_KILL_AFTER",
                                           "GODISLOCK_CONFLICT_EXIT_CODE"};
  void SetUp() override {
    for (const char* var : k_vars) {
      if (const char* v = std::getenv(var)) {
        m_saved.emplace_back(var, v);
      }
      ::unsetenv(var);
    }
  }
  void TearDown() override {
    for (const char* var : k_vars) {
      ::unsetenv(var);
    }
    for (const auto& [var, value] : m_saved) {
      ::setenv(var.c_str(), value.c_str(), 1);
    }
  }

 private:
  std::vector<std::pair<std::string, std::string>> m_saved;
};

TEST_F(CliTest, Defaults) {
  Options o = parse_words({"run", "--", "true"});
  EXPECT_EQ(o.action, Options::Action::run);
  const auto& r = o.run;
  EXPECT_FALSE(r.name.has_value());
  EXPECT_EQ(r.ttl, Millis(30000));
  EXPECT_FALSE(r.wait.has_value());
  EXPECT_FALSE(r.nonblock);
  EXPECT_EQ(r.conflict_exit_code, 75);
  EXPECT_EQ(r.url, k_default_url);
  EXPECT_EQ(r.url, "redis://127.0.0.1:6379");
  EXPECT_FALSE(r.password_file.has_value());
  EXPECT_EQ(r.prefix, "godislock:");
  EXPECT_EQ(r.connect_timeout, Millis(5000));
  EXPECT_EQ(r.kill_signal, "TERM");
  EXPECT_FALSE(r.kill_after.has_value());
  EXPECT_FALSE(r.verbose);
  EXPECT_FALSE(r.quiet);
  EXPECT_FALSE(r.shell_command.has_value());
  EXPECT_EQ(r.command, Words{"true"});
}

TEST_F(CliTest, ArgvAfterDoubleDashPassesThroughByteForByte) {
  Words cmd = {"ls",  "--ttl", "-n",    "--",       "-c",
               "x",   "",      "a b",   "\xff\xfe", "--url=redis://x",
               "-w5", "run",   "--help"};
  Words words = {"run", "--ttl", "5s", "-n", "--"};
  words.insert(words.end(), cmd.begin(), cmd.end());
  Options o = parse_words(words);
  EXPECT_EQ(o.run.command, cmd);
  EXPECT_EQ(o.run.ttl, Millis(5000));
  EXPECT_TRUE(o.run.nonblock);
  EXPECT_EQ(o.run.url, k_default_url);
}

TEST_F(CliTest, CommandWithoutDoubleDashFlockStyle) {
  Options o = parse_words({"run", "--name", "x", "ls", "-la"});
  EXPECT_EQ(o.run.name, "x");
  EXPECT_EQ(o.run.command, (Words{"ls", "-la"}));
}

TEST_F(CliTest, OptionsStopAtFirstNonOptionWord) {
  Options o = parse_words({"run", "-n", "ls", "--ttl", "5s", "-v", "-c", "x"});
  EXPECT_TRUE(o.run.nonblock);
  EXPECT_EQ(o.run.ttl, Millis(30000));
  EXPECT_FALSE(o.run.verbose);
  EXPECT_FALSE(o.run.shell_command.has_value());
  EXPECT_EQ(o.run.command, (Words{"ls", "--ttl", "5s", "-v", "-c", "x"}));
}

TEST_F(CliTest, ValueOptionsDoNotEndOptionsEarly) {
  // The values of --name, -w and -E look like command words but are not.
  Options o = parse_words({"run", "--name", "job", "-w", "5", "-E", "3",
                           "--kill-signal", "KILL", "make", "all"});
  EXPECT_EQ(o.run.name, "job");
  EXPECT_EQ(o.run.wait, Millis(5000));
  EXPECT_EQ(o.run.conflict_exit_code, 3);
  EXPECT_EQ(o.run.kill_signal, "KILL");
  EXPECT_EQ(o.run.command, (Words{"make", "all"}));
}

TEST_F(CliTest, AttachedShortValue) {
  Options o = parse_words({"run", "-w5", "--", "true"});
  ASSERT_TRUE(o.run.wait.has_value());
  EXPECT_EQ(*o.run.wait, Millis(5000));
  Options o2 = parse_words({"run", "-w250ms", "true"});
  EXPECT_EQ(o2.run.wait, Millis(250));
  EXPECT_EQ(o2.run.command, Words{"true"});
}

TEST_F(CliTest, ClusteredShortFlags) {
  Options o = parse_words({"run", "-nv", "--", "true"});
  EXPECT_TRUE(o.run.nonblock);
  EXPECT_TRUE(o.run.verbose);
  Options o2 = parse_words({"run", "-xo", "-q", "true"});
  EXPECT_TRUE(o2.run.quiet);
  EXPECT_EQ(o2.run.command, Words{"true"});
}

TEST_F(CliTest, ClusterEndingInValueOption) {
  Options o = parse_words({"run", "-vw", "2", "true"});
  EXPECT_TRUE(o.run.verbose);
  EXPECT_EQ(o.run.wait, Millis(2000));
  EXPECT_EQ(o.run.command, Words{"true"});
}

TEST_F(CliTest, LongOptionWithEquals) {
  Options o = parse_words({"run", "--ttl=2s", "--name=n1", "--", "true"});
  EXPECT_EQ(o.run.ttl, Millis(2000));
  EXPECT_EQ(o.run.name, "n1");
  Options o2 = parse_words({"run", "--ttl=2s", "true"});
  EXPECT_EQ(o2.run.ttl, Millis(2000));
  EXPECT_EQ(o2.run.command, Words{"true"});
}

TEST_F(CliTest, AllOptions) {
  Options o = parse_words({"run",
                           "--name",
                           "job",
                           "--ttl",
                           "1m",
                           "--timeout",
                           "10s",
                           "-E",
                           "1",
                           "--url",
                           "unix:///tmp/r.sock",
                           "--password-file",
                           "/etc/pw",
                           "--prefix",
                           "app:",
                           "--connect-timeout",
                           "250ms",
                           "--kill-signal",
                           "INT",
                           "--kill-after",
                           "3s",
                           "-x",
                           "-o",
                           "-v",
                           "--",
                           "cmd"});
  const auto& r = o.run;
  EXPECT_EQ(r.name, "job");
  EXPECT_EQ(r.ttl, Millis(60000));
  EXPECT_EQ(r.wait, Millis(10000));
  EXPECT_EQ(r.conflict_exit_code, 1);
  EXPECT_EQ(r.url, "unix:///tmp/r.sock");
  EXPECT_EQ(r.password_file, "/etc/pw");
  EXPECT_EQ(r.prefix, "app:");
  EXPECT_EQ(r.connect_timeout, Millis(250));
  EXPECT_EQ(r.kill_signal, "INT");
  EXPECT_EQ(r.kill_after, Millis(3000));
  EXPECT_TRUE(r.verbose);
  EXPECT_EQ(r.command, Words{"cmd"});
}

TEST_F(CliTest, WaitAliasesAndNonblockAliases) {
  EXPECT_EQ(parse_words({"run", "--wait", "3", "true"}).run.wait, Millis(3000));
  EXPECT_EQ(parse_words({"run", "--timeout", "3", "true"}).run.wait,
            Millis(3000));
  EXPECT_EQ(parse_words({"run", "--wait", "0", "true"}).run.wait, Millis(0));
  for (const char* flag : {"-n", "--nonblock", "--nb", "--no-wait"}) {
    EXPECT_TRUE(parse_words({"run", flag, "true"}).run.nonblock) << flag;
  }
}

TEST_F(CliTest, NonblockWithZeroWaitIsAllowed) {
  Options o = parse_words({"run", "-n", "--wait", "0", "true"});
  EXPECT_TRUE(o.run.nonblock);
  EXPECT_EQ(o.run.wait, Millis(0));
}

TEST_F(CliTest, ConflictExitCodeRange) {
  EXPECT_EQ(parse_words({"run", "-E", "0", "true"}).run.conflict_exit_code, 0);
  EXPECT_EQ(parse_words({"run", "-E", "255", "true"}).run.conflict_exit_code,
            255);
  EXPECT_EQ(parse_words({"run", "--conflict-exit-code", "9", "true"})
                .run.conflict_exit_code,
            9);
}

TEST_F(CliTest, UrlFromEnvironmentWhenOptionAbsent) {
  ::setenv("GODISLOCK_URL", "redis://envhost:7000/2", 1);
  EXPECT_EQ(parse_words({"run", "true"}).run.url, "redis://envhost:7000/2");
  EXPECT_EQ(parse_words({"run", "--url", "redis://opt:1", "true"}).run.url,
            "redis://opt:1");
  ::setenv("GODISLOCK_URL", "", 1);
  EXPECT_EQ(parse_words({"run", "true"}).run.url, k_default_url);
  ::unsetenv("GODISLOCK_URL");
  EXPECT_EQ(parse_words({"run", "true"}).run.url, k_default_url);
}

TEST_F(CliTest, ShellCommand) {
  Options o = parse_words({"run", "-c", "echo hi; exit 3"});
  EXPECT_EQ(o.run.shell_command, "echo hi; exit 3");
  EXPECT_TRUE(o.run.command.empty());
  Options o2 = parse_words({"run", "--name", "n", "--command", "true"});
  EXPECT_EQ(o2.run.shell_command, "true");
  Options o3 = parse_words({"run", "-c", "--ttl"});
  EXPECT_EQ(o3.run.shell_command, "--ttl");
}

TEST_F(CliTest, TopLevelHelp) {
  Options o = parse_words({"--help"});
  EXPECT_EQ(o.action, Options::Action::show_help);
  EXPECT_TRUE(contains(o.text, "Exit status")) << o.text;
  EXPECT_TRUE(contains(o.text, "run")) << o.text;
}

TEST_F(CliTest, RunHelp) {
  for (const Words& w : {Words{"run", "--help"}, Words{"run", "-h"},
                         Words{"run", "--ttl", "5s", "--help"}}) {
    Options o = parse_words(w);
    EXPECT_EQ(o.action, Options::Action::show_help);
    EXPECT_TRUE(contains(o.text, "Exit status")) << o.text;
    EXPECT_TRUE(contains(o.text, "--ttl")) << o.text;
    EXPECT_TRUE(contains(o.text, "--kill-after")) << o.text;
  }
}

TEST_F(CliTest, Version) {
  Options o = parse_words({"--version"});
  EXPECT_EQ(o.action, Options::Action::show_version);
  EXPECT_EQ(o.text.rfind("godislock ", 0), 0u) << o.text;
  EXPECT_GT(o.text.size(), std::string("godislock ").size());
}

TEST_F(CliTest, ErrorNoCommand) {
  EXPECT_TRUE(contains(usage_error({"run"}), "command"));
  usage_error({"run", "--ttl", "5s"});
  usage_error({"run", "--"});
  usage_error({"run", "-n"});
}

TEST_F(CliTest, ErrorEmptyCommandName) {
  std::string m = usage_error({"run", "--", ""});
  EXPECT_TRUE(contains(m, "empty")) << m;
  usage_error({"run", "--", "", "arg"});
}

TEST_F(CliTest, ErrorShellCommandAndCommand) {
  std::string m = usage_error({"run", "-c", "echo", "--", "ls"});
  EXPECT_TRUE(contains(m, "-c")) << m;
  usage_error({"run", "-c", "echo", "ls"});
}

TEST_F(CliTest, ErrorEmptyShellCommand) {
  std::string m = usage_error({"run", "-c", ""});
  EXPECT_TRUE(contains(m, "-c")) << m;
}

TEST_F(CliTest, ErrorNonblockWithWait) {
  std::string m = usage_error({"run", "-n", "--wait", "5", "true"});
  EXPECT_TRUE(contains(m, "--nonblock")) << m;
  EXPECT_TRUE(contains(m, "--wait")) << m;
  usage_error({"run", "-w", "1s", "--no-wait", "true"});
}

TEST_F(CliTest, ErrorVerboseWithQuiet) {
  std::string m = usage_error({"run", "-v", "-q", "true"});
  EXPECT_TRUE(contains(m, "--verbose")) << m;
  usage_error({"run", "-vq", "true"});
}

TEST_F(CliTest, ErrorBadDurationNamesOptionAndValue) {
  std::string m = usage_error({"run", "--ttl", "30x", "true"});
  EXPECT_TRUE(contains(m, "--ttl")) << m;
  EXPECT_TRUE(contains(m, "30x")) << m;
  m = usage_error({"run", "--wait", "-1", "true"});
  EXPECT_TRUE(contains(m, "--wait")) << m;
  m = usage_error({"run", "--kill-after", "1h30", "true"});
  EXPECT_TRUE(contains(m, "--kill-after")) << m;
  EXPECT_TRUE(contains(m, "1h30")) << m;
  m = usage_error({"run", "--connect-timeout", "soon", "true"});
  EXPECT_TRUE(contains(m, "--connect-timeout")) << m;
}

TEST_F(CliTest, ErrorZeroConnectTimeout) {
  std::string m = usage_error({"run", "--connect-timeout", "0", "true"});
  EXPECT_TRUE(contains(m, "--connect-timeout")) << m;
}

TEST_F(CliTest, ErrorConflictExitCodeOutOfRange) {
  usage_error({"run", "-E", "256", "true"});
  usage_error({"run", "-E", "-1", "true"});
  usage_error({"run", "-E", "abc", "true"});
}

TEST_F(CliTest, ErrorUnknownOption) {
  std::string m = usage_error({"run", "--bogus", "--", "true"});
  EXPECT_TRUE(contains(m, "--bogus")) << m;
  usage_error({"run", "-Z", "true"});
  usage_error({"--bogus"});
}

TEST_F(CliTest, ErrorMissingSubcommand) {
  std::string m = usage_error({});
  EXPECT_TRUE(contains(m, "subcommand")) << m;
  usage_error({"frobnicate", "--", "true"});
}

TEST_F(CliTest, ErrorMissingOptionValue) {
  usage_error({"run", "--name"});
  usage_error({"run", "--ttl"});
  usage_error({"run", "-w"});
}

}  // namespace

TEST_F(CliTest, EveryGlobalOptionComesFromTheEnvironment) {
  ::setenv("GODISLOCK_URL", "redis://10.0.0.1:7000", 1);
  ::setenv("GODISLOCK_PREFIX", "ci:", 1);
  ::setenv("GODISLOCK_PASSWORD_FILE", "/run/secrets/redis", 1);
  ::setenv("GODISLOCK_CONNECT_TIMEOUT", "2s", 1);
  ::setenv("GODISLOCK_VERBOSE", "1", 1);
  ::setenv("GODISLOCK_TTL", "1m", 1);
  ::setenv("GODISLOCK_WAIT", "90s", 1);
  ::setenv("GODISLOCK_KILL_SIGNAL", "INT", 1);
  ::setenv("GODISLOCK_KILL_AFTER", "3s", 1);
  ::setenv("GODISLOCK_CONFLICT_EXIT_CODE", "1", 1);
  const auto r = parse_words({"run", "--", "true"}).run;
  EXPECT_EQ(r.url, "redis://10.0.0.1:7000");
  EXPECT_EQ(r.prefix, "ci:");
  EXPECT_EQ(r.password_file, "/run/secrets/redis");
  EXPECT_EQ(r.connect_timeout, Millis(2000));
  EXPECT_TRUE(r.verbose);
  EXPECT_EQ(r.ttl, Millis(60000));
  EXPECT_EQ(r.wait, Millis(90000));
  EXPECT_EQ(r.kill_signal, "INT");
  EXPECT_EQ(r.kill_after, Millis(3000));
  EXPECT_EQ(r.conflict_exit_code, 1);
  // status and release read the connection ones too.
  const auto st = parse_words({"status"}).status;
  EXPECT_EQ(st.url, "redis://10.0.0.1:7000");
  EXPECT_EQ(st.prefix, "ci:");
  EXPECT_EQ(st.connect_timeout, Millis(2000));
}

TEST_F(CliTest, TheCommandLineWinsOverTheEnvironment) {
  ::setenv("GODISLOCK_TTL", "1m", 1);
  ::setenv("GODISLOCK_PREFIX", "ci:", 1);
  ::setenv("GODISLOCK_WAIT", "90s", 1);
  ::setenv("GODISLOCK_VERBOSE", "yes", 1);
  auto r =
      parse_words({"run", "--ttl", "5s", "--prefix", "x:", "-q", "--", "true"})
          .run;
  EXPECT_EQ(r.ttl, Millis(5000));
  EXPECT_EQ(r.prefix, "x:");
  EXPECT_TRUE(r.quiet);
  EXPECT_FALSE(r.verbose);
  // -n on the command line beats a wait from the environment (no conflict).
  r = parse_words({"run", "-n", "--", "true"}).run;
  EXPECT_TRUE(r.nonblock);
  EXPECT_FALSE(r.wait.has_value());
}

TEST_F(CliTest, BadEnvironmentValuesNameTheVariable) {
  ::setenv("GODISLOCK_TTL", "30x", 1);
  EXPECT_TRUE(contains(usage_error({"run", "--", "true"}),
                       "invalid value '30x' for GODISLOCK_TTL"));
  ::unsetenv("GODISLOCK_TTL");
  ::setenv("GODISLOCK_CONFLICT_EXIT_CODE", "300", 1);
  EXPECT_EQ(usage_error({"run", "--", "true"}),
            "invalid value '300' for GODISLOCK_CONFLICT_EXIT_CODE: an exit "
            "status from 0 to 255");
  ::unsetenv("GODISLOCK_CONFLICT_EXIT_CODE");
  ::setenv("GODISLOCK_VERBOSE", "maybe", 1);
  EXPECT_TRUE(contains(usage_error({"run", "--", "true"}),
                       "invalid value 'maybe' for GODISLOCK_VERBOSE"));
}

TEST_F(CliTest, StatusTakesNamesAndJson) {
  auto o = parse_words({"status"});
  EXPECT_EQ(o.action, Options::Action::status);
  EXPECT_TRUE(o.status.names.empty());
  EXPECT_FALSE(o.status.json);
  o = parse_words({"status", "--json", "a", "b", "--prefix", "p:"});
  EXPECT_EQ(o.status.names, (Words{"a", "b"}));
  EXPECT_TRUE(o.status.json);
  EXPECT_EQ(o.status.prefix, "p:");
}

TEST_F(CliTest, ReleaseNeedsForceAndOneName) {
  auto o = parse_words({"release", "--force", "deploy"});
  EXPECT_EQ(o.action, Options::Action::release);
  EXPECT_EQ(o.release.name, "deploy");
  EXPECT_EQ(usage_error({"release", "deploy"}),
            "release breaks lock 'deploy' for whoever holds it: add --force "
            "to do it");
  EXPECT_EQ(usage_error({"release", "--force"}),
            "release needs the name of a lock");
  usage_error({"release", "--force", "a", "b"});
}

TEST_F(CliTest, LimitAndSharedAndTheirConflicts) {
  auto r = parse_words({"run", "--limit", "3", "--", "true"}).run;
  EXPECT_EQ(r.limit, 3u);
  EXPECT_FALSE(r.shared);
  r = parse_words({"run", "-s", "true"}).run;
  EXPECT_TRUE(r.shared);
  EXPECT_EQ(r.command, Words{"true"});
  // --limit takes a value: the command starts after it.
  r = parse_words({"run", "--limit", "2", "echo", "hi"}).run;
  EXPECT_EQ(r.command, (Words{"echo", "hi"}));
  EXPECT_EQ(usage_error({"run", "-s", "--limit", "2", "--", "true"}),
            "--shared and --limit conflict: use one of them");
  EXPECT_EQ(usage_error({"run", "-s", "-x", "--", "true"}),
            "--shared and --exclusive conflict: use one of them");
  usage_error({"run", "--limit", "0", "--", "true"});
  usage_error({"run", "--limit", "1001", "--", "true"});
}

// The usual command lines are read without CLI11 (cli::Parser); whatever
// that path accepts must come out exactly as CLI11 reads it, with and
// without the environment, and whatever it refuses goes to CLI11.
TEST_F(CliTest, FastPathAgreesWithCli11) {
  const std::vector<Words> lines = {
      {"run", "--", "true"},
      {"run", "true"},
      {"run", "--name", "x", "--", "true", "--ttl", "1s"},
      {"run", "--name=x", "--ttl=10s", "--", "sh", "-c", "exit 3"},
      {"run", "--name", "deploy", "--ttl", "1m30s", "-w", "5m", "--", "a"},
      {"run", "--wait", "0", "--", "true"},
      {"run", "--timeout", "2.5", "--", "true"},
      {"run", "-n", "--", "true"},
      {"run", "--nb", "-E", "3", "--", "true"},
      {"run", "--no-wait", "--conflict-exit-code=0", "--", "true"},
      {"run", "-n", "--wait", "5s", "--", "true"},
      {"run", "-n", "--wait", "0", "--", "true"},
      {"run", "--nonblock", "-x", "-o", "--", "true"},
      {"run", "-s", "-x", "--", "true"},
      {"run", "--shared", "--", "true"},
      {"run", "--limit", "3", "--", "true"},
      {"run", "-s", "--limit", "3", "--", "true"},
      {"run", "--limit", "0", "--", "true"},
      {"run", "--limit=1001", "--", "true"},
      {"run", "--limit", "2x", "--", "true"},
      {"run", "--wait-tree", "-n", "--", "true"},
      {"run", "--no-fair", "-v", "--", "true"},
      {"run", "-v", "-q", "--", "true"},
      {"run", "-vq", "--", "true"},
      {"run", "-q", "--prefix", "p:", "--", "true"},
      {"run", "--url", "redis://127.0.0.1:1/2", "--", "true"},
      {"run", "--url", "unix:///tmp/r.sock?db=1", "--", "true"},
      {"run", "--password-file", "/etc/pw", "--", "true"},
      {"run", "--connect-timeout", "250ms", "--", "true"},
      {"run", "--connect-timeout", "0", "--", "true"},
      {"run", "--kill-signal", "KILL", "--kill-after", "2s", "--", "true"},
      {"run", "--kill-signal=HUP", "--", "true"},
      {"run", "--ttl", "fast", "--", "true"},
      {"run", "--ttl", "", "--", "true"},
      {"run", "--ttl", "-1", "--", "true"},
      {"run", "--ttl", "1s", "--ttl", "2s", "--", "true"},
      {"run", "-E", "256", "--", "true"},
      {"run", "-E", "x", "--", "true"},
      {"run", "-c", "echo hi"},
      {"run", "--command=echo hi"},
      {"run", "-c", "echo", "--", "true"},
      {"run", "-c", ""},
      {"run", "--name"},
      {"run", "--bogus", "--", "true"},
      {"run", "--verbose=1", "--", "true"},
      {"run", "--", ""},
      {"run"},
      {"run", "--help"},
      {"run", "-w5", "--", "true"},
  };
  const std::vector<std::vector<std::pair<const char*, const char*>>> envs = {
      {},
      {{"GODISLOCK_TTL", "10s"},
       {"GODISLOCK_WAIT", "1m"},
       {"GODISLOCK_URL", "redis://h:7/1"},
       {"GODISLOCK_PREFIX", "e:"},
       {"GODISLOCK_CONNECT_TIMEOUT", "2s"},
       {"GODISLOCK_KILL_SIGNAL", "INT"},
       {"GODISLOCK_KILL_AFTER", "1s"},
       {"GODISLOCK_CONFLICT_EXIT_CODE", "9"},
       {"GODISLOCK_VERBOSE", "1"}},
      {{"GODISLOCK_QUIET", "1"}, {"GODISLOCK_TTL", "soon"}},
  };
  int runs = 0;
  for (const auto& env : envs) {
    for (const auto& [var, value] : env) {
      ::setenv(var, value, 1);
    }
    for (const auto& words : lines) {
      std::string joined;
      for (const auto& w : words) {
        joined += " '" + w + "'";
      }
      std::string fast =
          outcome(words, godislock::cli::Parser::fast_when_plain);
      std::string cli11 = outcome(words, godislock::cli::Parser::cli11_only);
      EXPECT_EQ(fast, cli11) << "godislock" << joined;
      runs += fast.rfind("action=0", 0) == 0;
    }
    for (const auto& [var, value] : env) {
      ::unsetenv(var);
    }
  }
  EXPECT_GT(runs, 40);  // most lines are runs in some environment
}

namespace {

// --replicas, --replica-timeout, --sentinel-user, --sentinel-password-file
// and their environment variables, which CliTest does not clear.
class CliSentinelTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    for (const char* var : k_own) {
      ::unsetenv(var);
    }
  }
  void TearDown() override {
    for (const char* var : k_own) {
      ::unsetenv(var);
    }
    CliTest::TearDown();
  }
  static constexpr const char* k_own[] = {
      "GODISLOCK_REPLICAS", "GODISLOCK_REPLICA_TIMEOUT",
      "GODISLOCK_SENTINEL_USER", "GODISLOCK_SENTINEL_PASSWORD_FILE"};
};

// The new options as text, from either parser.
std::string sentinel_outcome(const Words& words,
                             godislock::cli::Parser parser) {
  try {
    const auto o = parse_words(words, parser).run;
    return "replicas=" + std::to_string(o.replicas) +
           " rt=" + std::to_string(o.replica_timeout.count()) +
           " suser=" + o.sentinel_user.value_or("-") +
           " spw=" + o.sentinel_password_file.value_or("-");
  } catch (const UsageError& e) {
    return "usage error: " + e.message;
  }
}

TEST_F(CliSentinelTest, ReplicasAndSentinelLogin) {
  const Words url = {"--url", "redis-sentinel://h:1/m"};
  Words w = {"run",   "--replicas",      "2",   "--replica-timeout",
             "250ms", "--sentinel-user", "mon", "--sentinel-password-file",
             "/pw"};
  w.insert(w.end(), url.begin(), url.end());
  w.insert(w.end(), {"--", "true"});
  EXPECT_EQ(sentinel_outcome(w, godislock::cli::Parser::fast_when_plain),
            "replicas=2 rt=250 suser=mon spw=/pw");
  EXPECT_EQ(sentinel_outcome(w, godislock::cli::Parser::cli11_only),
            "replicas=2 rt=250 suser=mon spw=/pw");
  const auto d = parse_words({"run", "--", "true"}).run;
  EXPECT_EQ(d.replicas, 0u);
  EXPECT_EQ(d.replica_timeout, Millis(1000));
  EXPECT_FALSE(d.sentinel_user);
}

TEST_F(CliSentinelTest, EnvironmentAndItsScope) {
  ::setenv("GODISLOCK_REPLICAS", "1", 1);
  ::setenv("GODISLOCK_REPLICA_TIMEOUT", "2s", 1);
  ::setenv("GODISLOCK_SENTINEL_USER", "mon", 1);
  ::setenv("GODISLOCK_SENTINEL_PASSWORD_FILE", "/pw", 1);
  const auto direct = parse_words({"run", "--", "true"}).run;
  EXPECT_EQ(direct.replicas, 1u);
  EXPECT_EQ(direct.replica_timeout, Millis(2000));
  // The sentinels' login is read only for a redis-sentinel:// URL.
  EXPECT_FALSE(direct.sentinel_user);
  EXPECT_FALSE(direct.sentinel_password_file);
  ::setenv("GODISLOCK_URL", "redis-sentinel://h:1/m", 1);
  const auto via = parse_words({"status"}).status;
  EXPECT_EQ(via.sentinel_user, "mon");
  EXPECT_EQ(via.sentinel_password_file, "/pw");
}

TEST_F(CliSentinelTest, Errors) {
  EXPECT_TRUE(contains(usage_error({"run", "--replicas", "-1", "--", "true"}),
                       "invalid value '-1' for --replicas"));
  EXPECT_TRUE(contains(usage_error({"run", "--replicas", "1001", "--", "true"}),
                       "a number of replicas from 0 to 1000"));
  EXPECT_TRUE(
      contains(usage_error({"run", "--replica-timeout", "1s", "--", "true"}),
               "--replica-timeout needs --replicas N"));
  EXPECT_TRUE(contains(usage_error({"run", "--replicas", "1",
                                    "--replica-timeout", "0", "--", "true"}),
                       "--replica-timeout must be greater than 0"));
  ::setenv("GODISLOCK_REPLICAS", "x", 1);
  EXPECT_TRUE(contains(usage_error({"run", "--", "true"}),
                       "invalid value 'x' for GODISLOCK_REPLICAS"));
}

}  // namespace
