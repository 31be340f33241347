// SPDX-License-Identifier: MIT
#include "cli/completion.hpp"

#include "completions/godislock_bash.hpp"
#include "completions/godislock_fish.hpp"
#include "completions/godislock_zsh.hpp"

#include <cstddef>

namespace godislock::cli {

namespace {

// An embedded script without the array's terminating NUL (the scripts are
// text, so that NUL is their only one).
template <std::size_t N>
std::string_view text_of(const char (&script)[N]) {
  return std::string_view(script, N - 1);
}

}  // namespace

std::optional<std::string_view> completion_script(std::string_view shell) {
  if (shell == "bash") {
    return text_of(completions::k_bash);
  }
  if (shell == "zsh") {
    return text_of(completions::k_zsh);
  }
  if (shell == "fish") {
    return text_of(completions::k_fish);
  }
  return std::nullopt;
}

}  // namespace godislock::cli
