# SPDX-License-Identifier: MIT
# Turns a text file into a C++ header holding it byte for byte, as
# `inline constexpr char <VAR>[]` in namespace NAMESPACE. Run as:
#   cmake -DINPUT=in.txt -DOUTPUT=out.hpp -DNAMESPACE=a::b -DVAR=k_text
#         -P embed_text.cmake
file(READ "${INPUT}" text)
# A raw string literal keeps every byte (no escapes, no line splicing); it
# only needs a delimiter that the text does not contain.
set(delim "godislock_text")
string(FIND "${text}" ")${delim}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the delimiter )${delim}\"")
endif()
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT}; do not edit.\n"
  "#pragma once\n"
  "namespace ${NAMESPACE} {\n"
  "inline constexpr char ${VAR}[] = R\"${delim}(${text})${delim}\";\n"
  "}  // namespace ${NAMESPACE}\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
