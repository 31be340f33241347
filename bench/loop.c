// SPDX-License-Identifier: MIT
// loop: one contender; runs COMMAND again and again while tickets last.
//
//   loop COUNTER MAX DEADLINE_MS LAUNCH_LOG -- COMMAND [ARGS...]
//
// COUNTER is a file holding a shared 64-bit ticket counter (all contenders
// of a run map the same file). Before each run, loop takes a ticket; it
// stops when the tickets reach MAX or DEADLINE_MS (CLOCK_MONOTONIC, ms) has
// passed, so every loop is bounded in count and in time, and the run ends
// with all contenders still queued instead of one of them running alone.
// After each run it appends "launch_ns done_ns pid status" to LAUNCH_LOG in
// one write(2). Exits 0 when every run exited 0, else 1.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc < 7 || strcmp(argv[5], "--") != 0) {
    fprintf(stderr, "usage: loop COUNTER MAX DEADLINE_MS LAUNCH_LOG -- CMD\n");
    return 2;
  }
  long long max = atoll(argv[2]);
  long long deadline = atoll(argv[3]) * 1000000LL;
  int cfd = open(argv[1], O_RDWR | O_CLOEXEC);
  int lfd = open(argv[4], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (cfd < 0 || lfd < 0) {
    fprintf(stderr, "loop: open: %s\n", strerror(errno));
    return 2;
  }
  long long* counter =
      mmap(NULL, sizeof *counter, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
  if (counter == MAP_FAILED) {
    fprintf(stderr, "loop: mmap: %s\n", strerror(errno));
    return 2;
  }
  int failed = 0;
  for (;;) {
    if (now_ns() >= deadline) {
      break;
    }
    if (__atomic_fetch_add(counter, 1, __ATOMIC_SEQ_CST) >= max) {
      break;
    }
    long long launch = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
      fprintf(stderr, "loop: fork: %s\n", strerror(errno));
      return 1;
    }
    if (pid == 0) {
      execvp(argv[6], argv + 6);
      fprintf(stderr, "loop: exec %s: %s\n", argv[6], strerror(errno));
      _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    long long done = now_ns();
    char line[128];
    int n = snprintf(line, sizeof line, "%lld %lld %d %d\n", launch, done,
                     (int)pid, status);
    if (write(lfd, line, (size_t)n) != n) {
      return 1;
    }
    if (status != 0) {
      failed = 1;
    }
  }
  return failed;
}
