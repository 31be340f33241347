// SPDX-License-Identifier: MIT
#include "app/plan.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using godislock::app::derive_name;
using Argv = std::vector<std::string>;

using namespace std::string_literals;

// 64-bit FNV-1a as specified (offset basis 14695981039346656037, prime
// 1099511628211) over the words, each followed by a NUL: the reference the
// man page documents.
std::string reference_hash(const Argv& argv) {
  uint64_t h = 14695981039346656037ULL;
  for (const auto& w : argv) {
    for (unsigned char c : w + '\0') {
      h ^= c;
      h *= 1099511628211ULL;
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// True when s is n lowercase hex digits (std::regex trips a GCC 12
// -Wmaybe-uninitialized false positive in the sanitizer build).
bool is_lower_hex(const std::string& s, size_t n) {
  return s.size() == n &&
         s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// True when name is "cmd:<base>:<16 lowercase hex>".
bool has_name_format(const std::string& name, const std::string& base) {
  std::string head = "cmd:" + base + ":";
  return name.rfind(head, 0) == 0 && is_lower_hex(name.substr(head.size()), 16);
}

// The <base> part of "cmd:<base>:<16 hex>".
std::string base_of(const std::string& name) {
  if (name.size() < 4 + 1 + 16) {
    return "<malformed: " + name + ">";
  }
  return name.substr(4, name.size() - 4 - 17);
}

TEST(DeriveName, Format) {
  std::string n = derive_name({"/usr/bin/rsync", "-a", "src/", "dst/"});
  EXPECT_TRUE(has_name_format(n, "rsync")) << n;
}

TEST(DeriveName, StableForSameArgv) {
  Argv a = {"backup.sh", "--full", "/srv"};
  EXPECT_EQ(derive_name(a), derive_name(a));
  EXPECT_EQ(derive_name(a), derive_name(Argv(a)));
}

TEST(DeriveName, DiffersWhenAnyWordDiffers) {
  Argv base = {"backup.sh", "--full", "/srv"};
  std::string n = derive_name(base);
  EXPECT_NE(n, derive_name({"backup.sh", "--full", "/srv/"}));
  EXPECT_NE(n, derive_name({"backup.sh", "--fulL", "/srv"}));
  EXPECT_NE(n, derive_name({"backup.sh", "--full"}));
  EXPECT_NE(n, derive_name({"backup.sh", "--full", "/srv", ""}));
  EXPECT_NE(n, derive_name({"backup.sh", "/srv", "--full"}));
  EXPECT_NE(n, derive_name({"./backup.sh", "--full", "/srv"}));
}

TEST(DeriveName, UsesBasenameOfFirstWord) {
  EXPECT_EQ(base_of(derive_name({"/usr/local/bin/tool", "x"})), "tool");
  EXPECT_EQ(base_of(derive_name({"./dir/run.sh"})), "run.sh");
  EXPECT_EQ(base_of(derive_name({"ls"})), "ls");
  EXPECT_EQ(base_of(derive_name({"dir/"})), "");
  // The path still counts in the hash: "./x" and "x" are different commands.
  EXPECT_NE(derive_name({"/bin/ls"}), derive_name({"ls"}));
}

TEST(DeriveName, SanitizesBasename) {
  EXPECT_EQ(base_of(derive_name({"/opt/my tool$v2!", "a"})), "my_tool_v2_");
  EXPECT_EQ(base_of(derive_name({"A-z_0.9"})), "A-z_0.9");
  EXPECT_EQ(base_of(derive_name({"a:b{c}\n"})), "a_b_c__");
  EXPECT_EQ(base_of(derive_name({"\xc3\xa9t\xc3\xa9"})), "__t__");
  EXPECT_EQ(base_of(derive_name({"x\0y"s})), "x_y");
}

TEST(DeriveName, LongBasenameIsCapped) {
  std::string longname(300, 'x');
  std::string n = derive_name({"/bin/" + longname});
  EXPECT_EQ(n, "cmd:" + std::string(64, 'x') + ":" + n.substr(n.size() - 16));
  EXPECT_EQ(n.size(), 4 + 64 + 1 + 16u);
}

TEST(DeriveName, WordsAreNulSeparated) {
  EXPECT_NE(derive_name({"a b"}), derive_name({"a", "b"}));
  EXPECT_NE(derive_name({"ab", "c"}), derive_name({"a", "bc"}));
  EXPECT_NE(derive_name({"sh", "-c", "x"}), derive_name({"sh", "-cx"}));
}

TEST(DeriveName, HashIsFnv1a64OfNulTerminatedWords) {
  // Values computed independently (Python) with the standard FNV-1a 64-bit
  // parameters; the man page promises "the 64-bit FNV-1a hash".
  EXPECT_EQ(reference_hash({}), "cbf29ce484222325");
  EXPECT_EQ(reference_hash({"ls", "-la"}), "f0b5141420aa4cf8");
  EXPECT_EQ(derive_name({"ls", "-la"}), "cmd:ls:f0b5141420aa4cf8");
  EXPECT_EQ(derive_name({"ls"}), "cmd:ls:1294cc191de9b838");
  EXPECT_EQ(derive_name({"a b"}), "cmd:a_b:c149b782aaf92016");
  EXPECT_EQ(derive_name({"a", "b"}), "cmd:a:ab40d7820d408076");
  EXPECT_EQ(derive_name({"sh", "-c", "echo hi"}), "cmd:sh:8b83646faf664b8e");
  for (const Argv& a :
       {Argv{"make", "-j8"}, Argv{"x", ""}, Argv{"bin\0ary"s, "\xff"}}) {
    std::string n = derive_name(a);
    EXPECT_EQ(n.substr(n.size() - 16), reference_hash(a));
  }
}

TEST(DeriveName, EmptyArgvDoesNotCrash) {
  std::string n = derive_name({});
  EXPECT_TRUE(has_name_format(n, "")) << n;
}

}  // namespace

// --- make_plan: options -> what run needs, or a usage error ---

namespace {

using godislock::app::make_plan;
using godislock::app::RunPlan;
using godislock::cli::RunOptions;
using godislock::cli::UsageError;
using std::chrono::milliseconds;

RunOptions options(std::vector<std::string> command) {
  RunOptions o;
  o.command = std::move(command);
  return o;
}

// The message of the UsageError make_plan throws ("" if none).
std::string usage_error(const RunOptions& o) {
  try {
    make_plan(o);
  } catch (const UsageError& e) {
    return e.message;
  }
  return "";
}

TEST(MakePlan, NamesTheLockAfterTheCommandUnlessNamed) {
  RunPlan p = make_plan(options({"/usr/bin/rsync", "-a", "src/", "dst/"}));
  EXPECT_TRUE(p.name_derived);
  EXPECT_EQ(p.name, derive_name({"/usr/bin/rsync", "-a", "src/", "dst/"}));
  RunOptions o = options({"true"});
  o.name = "deploy";
  p = make_plan(o);
  EXPECT_FALSE(p.name_derived);
  EXPECT_EQ(p.name, "deploy");
}

TEST(MakePlan, ShellCommandRunsUnderBinShAndNamesLikeSh) {
  RunOptions o = options({});
  o.shell_command = "echo hi";
  RunPlan p = make_plan(o);
  EXPECT_EQ(p.argv, (Argv{"/bin/sh", "-c", "echo hi"}));
  EXPECT_EQ(p.name, derive_name({"sh", "-c", "echo hi"}));
}

TEST(MakePlan, LeaseTimingAndKillSignal) {
  RunOptions o = options({"true"});
  o.ttl = milliseconds(30000);
  RunPlan p = make_plan(o);
  EXPECT_EQ(p.timing.ttl, milliseconds(30000));
  EXPECT_EQ(p.timing.kill_after, milliseconds(5000));
  EXPECT_EQ(p.timing.give_up_after, milliseconds(24396));
  EXPECT_EQ(p.kill_signal, 15);
  EXPECT_FALSE(p.single_try);
  o.nonblock = true;
  EXPECT_TRUE(make_plan(o).single_try);
  o.nonblock = false;
  o.wait = milliseconds(0);
  EXPECT_TRUE(make_plan(o).single_try);
}

TEST(MakePlan, RefusesWhatCannotBeRunSafely) {
  RunOptions o = options({"true"});
  o.ttl = milliseconds(2);
  EXPECT_EQ(usage_error(o), "--ttl 2ms is below the minimum of 3ms");
  o.ttl = milliseconds(5);
  EXPECT_EQ(usage_error(o),
            "--ttl 5ms is too short to stop the command before the lease "
            "expires (use --ttl 7ms or more)");
  o.ttl = milliseconds(3000);
  o.kill_after = milliseconds(2500);
  EXPECT_NE(
      usage_error(o).find("--kill-after 2s500ms does not fit in --ttl 3s"),
      std::string::npos)
      << usage_error(o);
  o.kill_after.reset();
  o.kill_signal = "BOGUS";
  EXPECT_EQ(usage_error(o),
            "invalid value 'BOGUS' for --kill-signal: unknown signal");
  o.kill_signal = "TERM";
  o.name = std::string(257, 'n');
  EXPECT_EQ(usage_error(o), "--name is 257 bytes long; the limit is 256");
  o.name = "bad\nname";
  EXPECT_EQ(usage_error(o), "--name must not contain control characters");
}

}  // namespace
