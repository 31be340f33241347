# SPDX-License-Identifier: MIT
# Turns a Lua script into a C++ header holding its text and SHA1 (for
# EVALSHA), with the shared PRELUDE in front of it. Run as:
#   cmake -DINPUT=x.lua -DPRELUDE=prelude.lua -DOUTPUT=x.hpp -DNAME=x \
#         -P embed_lua.cmake
file(READ "${PRELUDE}" prelude)
file(READ "${INPUT}" script)
set(text "${prelude}\n${script}")
string(SHA1 sha "${text}")
# A raw string literal with a delimiter that cannot appear in Lua code.
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT}; do not edit.\n"
  "#pragma once\n"
  "namespace godislock::backend::scripts {\n"
  "inline constexpr const char* k_${NAME}_source = R\"godislock_lua(${text})godislock_lua\";\n"
  "inline constexpr const char* k_${NAME}_sha1 = \"${sha}\";\n"
  "}  // namespace godislock::backend::scripts\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
