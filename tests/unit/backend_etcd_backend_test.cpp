// SPDX-License-Identifier: MIT
#include "backend/etcd_backend.hpp"

#include <gtest/gtest.h>

namespace {

using godislock::backend::etcd_lock_prefix;

TEST(EtcdLockPrefix, PrefixNameSlash) {
  EXPECT_EQ(etcd_lock_prefix("godislock:", "deploy"), "godislock:deploy/");
  EXPECT_EQ(etcd_lock_prefix("", "x"), "x/");
}

// No lock's keys may fall under another lock's prefix: '/' (the separator
// before the lease ID) and '%' (the escape) are written as %2F and %25.
TEST(EtcdLockPrefix, SlashAndPercentAreEscaped) {
  EXPECT_EQ(etcd_lock_prefix("p:", "a/b"), "p:a%2Fb/");
  EXPECT_EQ(etcd_lock_prefix("p:", "a%2Fb"), "p:a%252Fb/");
  EXPECT_EQ(etcd_lock_prefix("p:", "%"), "p:%25/");
  std::string a = etcd_lock_prefix("p:", "a");
  std::string ab = etcd_lock_prefix("p:", "a/b");
  EXPECT_NE(ab.compare(0, a.size(), a), 0) << ab << " is under " << a;
}

TEST(EtcdLockPrefix, OtherBytesAreKept) {
  EXPECT_EQ(etcd_lock_prefix("p:", "n\xc3\xa4me {x}:y"),
            "p:n\xc3\xa4me {x}:y/");
}

}  // namespace
