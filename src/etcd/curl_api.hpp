// SPDX-License-Identifier: MIT
#pragma once

#include <curl/curl.h>

#include "util/result.hpp"

namespace godislock::etcd {

// --- Interface ---

// The libcurl functions the etcd client calls, found at run time with
// dlopen("libcurl.so.4") instead of being linked: libcurl brings some
// thirty shared libraries of its own (TLS, HTTP/2, IDN, LDAP, SSH, ...),
// and a linked one would be loaded on every run, Redis runs included, whose
// start-up must stay near flock(1)'s. Each pointer has the type of curl's
// own declaration (decltype of it), so every call stays type-checked
// against the headers we built with.
struct CurlApi {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_multi_init) multi_init;
  decltype(&curl_multi_cleanup) multi_cleanup;
  decltype(&curl_multi_add_handle) multi_add_handle;
  decltype(&curl_multi_remove_handle) multi_remove_handle;
  decltype(&curl_multi_perform) multi_perform;
  decltype(&curl_multi_info_read) multi_info_read;
  decltype(&curl_multi_poll) multi_poll;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
};

// Loads libcurl and curl_global_init()s it, once per process (thread-safe);
// later calls return the same table. ErrorKind::io with one line naming
// the library and dlerror()'s reason when it cannot be loaded or lacks a
// function (libcurl older than 7.66).
util::Result<const CurlApi*> load_curl();

// The table; only after load_curl() succeeded.
const CurlApi& curl_api();

}  // namespace godislock::etcd
