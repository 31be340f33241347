// SPDX-License-Identifier: MIT
#include "etcd/curl_api.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <mutex>
#include <string>

namespace godislock::etcd {

namespace {

// libcurl's ABI has been libcurl.so.4 since 2006; the Debian package that
// ships it is libcurl4 (OpenSSL flavour; libcurl3-gnutls installs
// libcurl-gnutls.so.4 and is not looked for).
constexpr const char* k_library = "libcurl.so.4";

CurlApi g_api{};
std::string g_load_error;
bool g_loaded = false;

template <typename Fn>
bool find(void* lib, const char* name, Fn* out, std::string* missing) {
  void* sym = ::dlsym(lib, name);
  if (sym == nullptr) {
    if (missing->empty()) {
      *missing = name;
    }
    return false;
  }
  // POSIX guarantees that a dlsym() result converts to a function pointer.
  *out = reinterpret_cast<Fn>(sym);
  return true;
}

void load() {
  // RTLD_LOCAL: curl's symbols (and those of its dependencies) stay out of
  // the global namespace, where they could shadow ours (OpenSSL is linked
  // into the binary too; libcurl brings its own reference to the same
  // libssl.so.3, which the loader shares).
  void* lib = ::dlopen(k_library, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = ::dlerror();
    g_load_error = fmt::format(
        "etcd needs libcurl, which could not be loaded: {} (install the "
        "libcurl4 package)",
        why != nullptr ? why : k_library);
    return;
  }
  std::string missing;
  CurlApi a{};
  bool ok =
      find(lib, "curl_global_init", &a.global_init, &missing) &
      find(lib, "curl_easy_init", &a.easy_init, &missing) &
      find(lib, "curl_easy_cleanup", &a.easy_cleanup, &missing) &
      find(lib, "curl_easy_setopt", &a.easy_setopt, &missing) &
      find(lib, "curl_easy_getinfo", &a.easy_getinfo, &missing) &
      find(lib, "curl_easy_strerror", &a.easy_strerror, &missing) &
      find(lib, "curl_multi_init", &a.multi_init, &missing) &
      find(lib, "curl_multi_cleanup", &a.multi_cleanup, &missing) &
      find(lib, "curl_multi_add_handle", &a.multi_add_handle, &missing) &
      find(lib, "curl_multi_remove_handle", &a.multi_remove_handle, &missing) &
      find(lib, "curl_multi_perform", &a.multi_perform, &missing) &
      find(lib, "curl_multi_info_read", &a.multi_info_read, &missing) &
      find(lib, "curl_multi_poll", &a.multi_poll, &missing) &
      find(lib, "curl_slist_append", &a.slist_append, &missing) &
      find(lib, "curl_slist_free_all", &a.slist_free_all, &missing);
  if (!ok) {
    g_load_error = fmt::format("etcd needs libcurl 7.66 or later: {} has no {}",
                               k_library, missing);
    ::dlclose(lib);
    return;
  }
  // Never dlclose()d: curl's handles live until exit, and its thread-local
  // and atexit state must not point into unmapped code.
  if (a.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    g_load_error = "etcd: curl_global_init failed";
    return;
  }
  g_api = a;
  g_loaded = true;
}

}  // namespace

util::Result<const CurlApi*> load_curl() {
  // curl_global_init is not thread-safe in libcurl 7.88: once per process.
  static std::once_flag once;
  std::call_once(once, load);
  if (!g_loaded) {
    return util::Error{util::ErrorKind::io, g_load_error};
  }
  return &g_api;
}

const CurlApi& curl_api() { return g_api; }

}  // namespace godislock::etcd
