// SPDX-License-Identifier: MIT
#pragma once

#include <optional>
#include <string_view>

namespace godislock::cli {

// The completion script that `godislock completion SHELL` prints for
// `shell` ("bash", "zsh" or "fish"): byte for byte the file in completions/,
// embedded at build time. nullopt for any other shell.
std::optional<std::string_view> completion_script(std::string_view shell);

// The shells completion_script() knows, for messages: "bash, zsh or fish".
inline constexpr const char* k_completion_shells = "bash, zsh or fish";

}  // namespace godislock::cli
