// SPDX-License-Identifier: MIT
// The critical section run by every fault-injection contender under
// `godislock run` (compiled on the fly by tests/fault/run with cc).
//
//   cs HISTORY RESOURCE SECTION SLEEP_MS MODE MARKER
//
// Appends one line per event to HISTORY (O_APPEND, one write(2) each, so
// records of concurrent processes never interleave), all times from
// CLOCK_MONOTONIC in nanoseconds:
//   S sid t pid ppid fence slot        started (GODISLOCK_FENCE and
//                                      GODISLOCK_SLOT; slot 0 when unset)
//   R sid t ok|stale last counter seen    read of the resource
//   T sid t                            SIGTERM arrived (from the handler)
//   P sid counter_after                   about to write (see W)
//   W sid t ok|stale last counter_after   write of the resource
//   Q sid t ok|stale last counter last0 counter0
//                                      a shared section's second read (and
//                                      what its first read saw)
//   G sid gpid                         a grandchild was started
//   E sid t normal|termed              finished
//
// RESOURCE is a fenced store holding "last_fence counter seen_x seen_s": a
// request whose fence is lower than the highest fence the store has seen is
// refused, and a write must also carry a fence greater than the last
// written one (the storage side of Kleppmann's fencing tokens). seen_x is
// the highest fence of an exclusive reader, seen_s of a shared one: shared
// readers are refused only below seen_x (they may run together, so an
// older shared reader after a newer one is fine), exclusive requests below
// either. The section reads the counter, sleeps SLEEP_MS, then writes the
// counter it read + 1: a read-sleep-write that loses an update whenever two
// sections overlap and fencing fails. flock(2) only makes each request
// atomic against the others; it is not the mutual exclusion under test.
//
// MODE "normal": SIGTERM interrupts the sleep; the section still attempts
// its write (a zombie's last write, which the fence must refuse when a newer
// holder has been seen) and exits 143. MODE "slotted": the same on the store
// RESOURCE.K, K = GODISLOCK_SLOT (a counted lock: one store per slot). MODE
// "shared": a shared holder; it only reads, at the start and again at the
// end (Q): the counter must not change in between. MODE "ignore-term":
// SIGTERM is recorded and otherwise ignored, and the section starts three
// grandchildren that ignore it too (one in its process group, one in a new
// session, one orphaned by a double fork), each living about SLEEP_MS; the
// section waits for all of them (EOF on a pipe they hold).
// In every mode SIGUSR1 ends the sleep early and the section finishes
// normally (the fair scenarios release their blocking holder this way;
// godislock forwards the signal to the command).
// MARKER is unused here: it makes the process findable by its command line.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int g_hist = -1;
static const char* g_sid = "?";
static volatile sig_atomic_t g_termed = 0;
static volatile sig_atomic_t g_go = 0;

static unsigned long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000000000ULL +
         (unsigned long long)ts.tv_nsec;
}

// Async-signal-safe formatting for the handler.
static char* put_str(char* p, const char* s) {
  while (*s != '\0') {
    *p++ = *s++;
  }
  return p;
}

static char* put_u64(char* p, unsigned long long v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) {
    *p++ = tmp[--n];
  }
  return p;
}

static void on_term(int sig) {
  (void)sig;
  int saved = errno;
  char buf[256];
  char* p = buf;
  p = put_str(p, "T ");
  p = put_str(p, g_sid);
  p = put_str(p, " ");
  p = put_u64(p, now_ns());
  *p++ = '\n';
  ssize_t ignored = write(g_hist, buf, (size_t)(p - buf));
  (void)ignored;
  g_termed = 1;
  errno = saved;
}

static void record(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void record(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0 && (size_t)n < sizeof buf) {
    ssize_t ignored = write(g_hist, buf, (size_t)n);
    (void)ignored;
  }
}

static void on_usr1(int sig) {
  (void)sig;
  g_go = 1;
}

// Sleeps ms; with stop_on_term, returns early once SIGTERM arrived; returns
// early on SIGUSR1 in any case.
static void sleep_ms(long ms, int stop_on_term) {
  struct timespec end;
  clock_gettime(CLOCK_MONOTONIC, &end);
  end.tv_sec += ms / 1000;
  end.tv_nsec += (ms % 1000) * 1000000L;
  if (end.tv_nsec >= 1000000000L) {
    end.tv_sec++;
    end.tv_nsec -= 1000000000L;
  }
  for (;;) {
    if ((stop_on_term && g_termed) || g_go) {
      return;
    }
    int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL);
    if (rc == 0) {
      return;
    }
  }
}

static int lock_file(int fd) {
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      return -1;
    }
  }
  return 0;
}

struct store {
  unsigned long long last;
  unsigned long long counter;
  unsigned long long seen;         // highest fence of an exclusive reader
  unsigned long long seen_shared;  // highest fence of a shared reader
};

static void load(int fd, struct store* s) {
  char buf[128];
  memset(s, 0, sizeof *s);
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n > 0) {
    buf[n] = '\0';
    sscanf(buf, "%llu %llu %llu %llu", &s->last, &s->counter, &s->seen,
           &s->seen_shared);
  }
}

// One fixed-width pwrite(2) at offset 0, never a truncation: a section
// killed (SIGKILL, parent-death signal) in the middle of saving leaves
// either the old or the new content, never an empty or torn file.
static void save(int fd, const struct store* s) {
  char buf[128];
  int n = snprintf(buf, sizeof buf, "%020llu %020llu %020llu %020llu\n",
                   s->last, s->counter, s->seen, s->seen_shared);
  if (pwrite(fd, buf, (size_t)n, 0) != n) {
    record("X %s write-failed %d\n", g_sid, errno);
  }
}

static void grandchild(int hold_fd, long ms) {
  signal(SIGTERM, SIG_IGN);
  (void)hold_fd;  // kept open until exit: the section waits for its EOF
  sleep_ms(ms, 0);
  _exit(0);
}

int main(int argc, char** argv) {
  if (argc != 7) {
    fprintf(stderr,
            "usage: cs HISTORY RESOURCE SECTION SLEEP_MS MODE MARKER\n");
    return 2;
  }
  g_sid = argv[3];
  long ms = atol(argv[4]);
  int ignore_term = strcmp(argv[5], "ignore-term") == 0;
  int shared = strcmp(argv[5], "shared") == 0;
  int slotted = strcmp(argv[5], "slotted") == 0;
  g_hist = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (g_hist < 0) {
    perror("cs: history");
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;  // no SA_RESTART: the sleep must be cut short
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);

  const char* fence_env = getenv("GODISLOCK_FENCE");
  unsigned long long fence =
      fence_env != NULL ? strtoull(fence_env, NULL, 10) : 0;
  const char* slot_env = getenv("GODISLOCK_SLOT");
  long slot = slot_env != NULL ? atol(slot_env) : 0;
  record("S %s %llu %d %d %llu %ld\n", g_sid, now_ns(), (int)getpid(),
         (int)getppid(), fence, slot);

  char path[4096];
  if (slotted) {
    snprintf(path, sizeof path, "%s.%ld", argv[2], slot);
  } else {
    snprintf(path, sizeof path, "%s", argv[2]);
  }
  int res = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (res < 0) {
    record("X %s open-failed %d\n", g_sid, errno);
    return 2;
  }

  pid_t kids[3] = {0, 0, 0};
  int pipefd[2] = {-1, -1};
  if (ignore_term) {
    if (pipe(pipefd) != 0) {
      return 2;
    }
    for (int k = 0; k < 3; ++k) {
      pid_t p = fork();
      if (p < 0) {
        record("X %s fork-failed %d\n", g_sid, errno);
        break;
      }
      if (p == 0) {
        close(pipefd[0]);
        if (k == 1) {
          setsid();  // leaves the process group godislock signals
        }
        if (k == 2) {
          // Double fork: the grandchild is orphaned (reparented to the
          // nearest subreaper, godislock).
          pid_t q = fork();
          if (q == 0) {
            record("G %s %d\n", g_sid, (int)getpid());
            grandchild(pipefd[1], ms);
          }
          _exit(0);
        }
        record("G %s %d\n", g_sid, (int)getpid());
        grandchild(pipefd[1], ms);
      }
      kids[k] = p;
    }
    close(pipefd[1]);
  }

  // Read: register our fence with the store.
  struct store st;
  if (lock_file(res) != 0) {
    return 2;
  }
  load(res, &st);
  unsigned long long counter_read = st.counter;
  unsigned long long last_read = st.last;
  int read_ok = fence >= st.seen && (shared || fence >= st.seen_shared);
  if (read_ok) {
    if (shared) {
      if (fence > st.seen_shared) {
        st.seen_shared = fence;
      }
    } else {
      st.seen = fence;
    }
    save(res, &st);
  }
  record("R %s %llu %s %llu %llu %llu\n", g_sid, now_ns(),
         read_ok ? "ok" : "stale", st.last, st.counter, st.seen);
  flock(res, LOCK_UN);

  sleep_ms(ms, !ignore_term);

  if (read_ok && shared) {
    // A reader writes nothing: it reads again, and nobody may have written
    // in between (no exclusive holder beside a shared one).
    if (lock_file(res) != 0) {
      return 2;
    }
    load(res, &st);
    int ok = fence >= st.seen;
    record("Q %s %llu %s %llu %llu %llu %llu\n", g_sid, now_ns(),
           ok ? "ok" : "stale", st.last, st.counter, last_read, counter_read);
    flock(res, LOCK_UN);
  } else if (read_ok) {
    if (lock_file(res) != 0) {
      return 2;
    }
    load(res, &st);
    int ok = fence > st.last && fence >= st.seen && fence >= st.seen_shared;
    unsigned long long last_before = st.last;
    if (ok) {
      st.last = fence;
      st.counter = counter_read + 1;
      // A section killed between save() and the W record below (its
      // godislock was SIGKILLed: parent-death signal) leaves a write the
      // history would not show; P lets the checker account for it.
      record("P %s %llu\n", g_sid, st.counter);
      save(res, &st);
    }
    record("W %s %llu %s %llu %llu\n", g_sid, now_ns(), ok ? "ok" : "stale",
           last_before, ok ? st.counter : 0ULL);
    flock(res, LOCK_UN);
  }

  if (ignore_term) {
    char c;
    for (;;) {
      ssize_t n = read(pipefd[0], &c, 1);
      if (n == 0 || (n < 0 && errno != EINTR)) {
        break;
      }
    }
    for (int k = 0; k < 3; ++k) {
      if (kids[k] > 0) {
        while (waitpid(kids[k], NULL, 0) < 0 && errno == EINTR) {
        }
      }
    }
  }
  record("E %s %llu %s\n", g_sid, now_ns(), g_termed ? "termed" : "normal");
  return g_termed && !ignore_term ? 143 : 0;
}
