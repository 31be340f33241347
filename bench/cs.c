// SPDX-License-Identifier: MIT
// cs: a critical section that leaves evidence.
//
//   cs LOG [HOLD_US]
//
// Reads CLOCK_MONOTONIC at its start, sleeps HOLD_US microseconds (default
// 0), reads the clock again and appends one line to LOG in a single write(2)
// on an O_APPEND descriptor (so lines from concurrent writers never mix):
//
//   start_ns end_ns fence pid ppid
//
// fence is $GODISLOCK_FENCE (0 when unset); ppid is the locking tool's
// process (godislock, flock or the polling shell), which lets the driver tie
// a section to the invocation that ran it. Built static by bench/run so that
// its exec costs the same, and as little as possible, under every tool.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char** argv) {
  long long start = now_ns();
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: cs LOG [HOLD_US]\n");
    return 2;
  }
  long hold_us = argc == 3 ? strtol(argv[2], NULL, 10) : 0;
  if (hold_us > 0) {
    struct timespec req = {hold_us / 1000000, (hold_us % 1000000) * 1000};
    while (nanosleep(&req, &req) != 0 && errno == EINTR) {
    }
  }
  const char* fence = getenv("GODISLOCK_FENCE");
  int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    fprintf(stderr, "cs: %s: %s\n", argv[1], strerror(errno));
    return 3;
  }
  long long end = now_ns();
  char line[160];
  int n = snprintf(line, sizeof line, "%lld %lld %s %d %d\n", start, end,
                   fence != NULL && *fence != '\0' ? fence : "0", (int)getpid(),
                   (int)getppid());
  if (write(fd, line, (size_t)n) != n) {
    fprintf(stderr, "cs: write %s: %s\n", argv[1], strerror(errno));
    return 3;
  }
  close(fd);
  return 0;
}
