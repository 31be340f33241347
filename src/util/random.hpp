// SPDX-License-Identifier: MIT
#pragma once

#include "util/result.hpp"

#include <string>

namespace godislock::util {

// Returns 128 bits from getrandom(2) as 32 lowercase hex digits. Fails
// (never falls back to a weaker source) when the kernel cannot supply them.
Result<std::string> random_token();

}  // namespace godislock::util
