// SPDX-License-Identifier: MIT
// delay_link: a point-to-point IP link with a fixed one-way delay, between
// this network namespace and another one, for bench/run's round-trip mode.
//
//   delay_link NETNS DELAY_US TUN_HERE TUN_THERE STATS_FILE
//
// Makes the TUN device TUN_HERE in the current namespace and TUN_THERE in
// /run/netns/NETNS (root, /dev/net/tun), prints "ready" and copies every IP
// packet from one device to the other DELAY_US microseconds after it
// arrived. The caller gives the devices their addresses with ip(8).
//
// Why IP packets and not a TCP proxy: a TCP proxy on this machine accepts
// the client's connection itself, at once; the client's TCP handshake, its
// first round trip on a real network, would cost nothing. Here SYN, SYN-ACK,
// data and ACKs all cross the delay, as on a wire.
//
// Each packet leaves at its own arrival time + DELAY_US (packets are not
// queued behind each other's delays); a direction's packets leave in the
// order they came, since their due times are in arrival order. The loop
// sleeps with ppoll(2) to the next due time, at SCHED_FIFO priority when it
// may (root), so that the machine's load hardly moves it.
//
// SIGUSR1 writes STATS_FILE (to STATS_FILE.tmp, then renamed): per
// direction ("up" = from TUN_HERE to TUN_THERE, "down" the other way) the
// packets, the TCP SYNs without ACK (connections opened), the TCP packets
// with a payload, drops; and how late the packets left (lateness =
// departure - due, in microseconds: the link's own jitter). SIGTERM writes
// it too and exits. SIGUSR2 switches the delay between DELAY_US and 0 (the
// same path without the delay, for local costs); packets keep their order.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

enum { SLOTS = 8192, SLOT_BYTES = 2048, LATE_MAX_US = 100000 };

struct packet {
  int64_t due_ns;
  int len;
  unsigned char data[SLOT_BYTES];
};

struct direction {
  const char* name;
  int in_fd, out_fd;
  struct packet* ring;
  unsigned head, tail;  // tail - head packets wait
  uint64_t packets, syns, payload_packets, drops, write_errors;
  uint64_t late[LATE_MAX_US + 1];  // lateness histogram, 1 us buckets
  int64_t late_max_us;
};

static volatile sig_atomic_t want_stats, want_exit, want_toggle;

static void on_signal(int sig) {
  if (sig == SIGUSR1) {
    want_stats = 1;
  } else if (sig == SIGUSR2) {
    want_toggle = 1;
  } else {
    want_exit = 1;
  }
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int open_tun(const char* name) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "delay_link: /dev/net/tun: %s\n", strerror(errno));
    exit(2);
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    fprintf(stderr, "delay_link: TUNSETIFF %s: %s\n", name, strerror(errno));
    exit(2);
  }
  return fd;
}

// Counts what a packet is: an IPv4 TCP SYN (no ACK), a TCP segment with
// payload. Anything else only counts as a packet.
static void classify(struct direction* d, const unsigned char* p, int len) {
  if (len < 20 || (p[0] >> 4) != 4 || p[9] != 6) {
    return;
  }
  int ihl = (p[0] & 15) * 4;
  int total = (p[2] << 8) | p[3];
  if (len < ihl + 20 || total > len) {
    return;
  }
  const unsigned char* tcp = p + ihl;
  int doff = (tcp[12] >> 4) * 4;
  unsigned flags = tcp[13];
  if ((flags & 0x02) && !(flags & 0x10)) {
    d->syns++;
  }
  if (total - ihl - doff > 0) {
    d->payload_packets++;
  }
}

static void receive(struct direction* d) {
  for (;;) {
    struct packet* slot = &d->ring[d->tail % SLOTS];
    unsigned char scratch[SLOT_BYTES];
    int full = d->tail - d->head >= SLOTS;
    ssize_t n = read(d->in_fd, full ? scratch : slot->data, SLOT_BYTES);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        fprintf(stderr, "delay_link: read: %s\n", strerror(errno));
      }
      return;
    }
    d->packets++;
    if (full) {
      d->drops++;
      continue;
    }
    slot->due_ns = now_ns();  // + delay, added by the caller's loop
    slot->len = (int)n;
    classify(d, slot->data, slot->len);
    d->tail++;
  }
}

static void send_due(struct direction* d, int64_t delay_ns) {
  while (d->head != d->tail) {
    struct packet* slot = &d->ring[d->head % SLOTS];
    int64_t due = slot->due_ns + delay_ns;
    int64_t now = now_ns();
    if (now < due) {
      return;
    }
    if (write(d->out_fd, slot->data, (size_t)slot->len) < 0) {
      d->write_errors++;
    }
    int64_t late_us = (now_ns() - due) / 1000;
    d->late[late_us > LATE_MAX_US ? LATE_MAX_US : late_us]++;
    if (late_us > d->late_max_us) {
      d->late_max_us = late_us;
    }
    d->head++;
  }
}

static void write_stats(const char* path, struct direction* dirs, int rt,
                        long delay_us) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE* f = fopen(tmp, "w");
  if (f == NULL) {
    fprintf(stderr, "delay_link: %s: %s\n", tmp, strerror(errno));
    return;
  }
  fprintf(f, "delay_us %ld\nrealtime %d\n", delay_us, rt);
  for (int i = 0; i < 2; ++i) {
    struct direction* d = &dirs[i];
    fprintf(f,
            "%s packets %llu syns %llu payload %llu drops %llu "
            "write_errors %llu late_max_us %lld\n",
            d->name, (unsigned long long)d->packets,
            (unsigned long long)d->syns, (unsigned long long)d->payload_packets,
            (unsigned long long)d->drops, (unsigned long long)d->write_errors,
            (long long)d->late_max_us);
    for (int us = 0; us <= LATE_MAX_US; ++us) {
      if (d->late[us]) {
        fprintf(f, "%s late %d %llu\n", d->name, us,
                (unsigned long long)d->late[us]);
      }
    }
  }
  if (fclose(f) != 0 || rename(tmp, path) != 0) {
    fprintf(stderr, "delay_link: %s: %s\n", path, strerror(errno));
  }
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr,
            "usage: delay_link NETNS DELAY_US TUN_HERE TUN_THERE STATS\n");
    return 2;
  }
  long delay_us = atol(argv[2]);
  int64_t delay_ns = (int64_t)delay_us * 1000;
  int delayed = 1;
  int here = open_tun(argv[3]);
  char ns_path[4096];
  snprintf(ns_path, sizeof ns_path, "/run/netns/%s", argv[1]);
  int ns = open(ns_path, O_RDONLY | O_CLOEXEC);
  if (ns < 0 || setns(ns, CLONE_NEWNET) < 0) {
    fprintf(stderr, "delay_link: %s: %s\n", ns_path, strerror(errno));
    return 2;
  }
  close(ns);
  int there = open_tun(argv[4]);

  static struct direction dirs[2];
  dirs[0].name = "up";
  dirs[0].in_fd = here;
  dirs[0].out_fd = there;
  dirs[1].name = "down";
  dirs[1].in_fd = there;
  dirs[1].out_fd = here;
  for (int i = 0; i < 2; ++i) {
    dirs[i].ring = calloc(SLOTS, sizeof(struct packet));
    if (dirs[i].ring == NULL) {
      fprintf(stderr, "delay_link: out of memory\n");
      return 2;
    }
  }

  // Timer precision: a real-time priority (root) and no timer slack.
  struct sched_param sp = {.sched_priority = 10};
  int rt = sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);

  // Gone with the driver that started us, even if it is killed.
  prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);

  printf("ready\n");
  fflush(stdout);

  while (!want_exit) {
    if (want_toggle) {
      want_toggle = 0;
      delayed = !delayed;
      delay_ns = delayed ? (int64_t)delay_us * 1000 : 0;
    }
    if (want_stats) {
      want_stats = 0;
      write_stats(argv[5], dirs, rt, delay_ns / 1000);
    }
    int64_t next = -1;
    for (int i = 0; i < 2; ++i) {
      if (dirs[i].head != dirs[i].tail) {
        int64_t due = dirs[i].ring[dirs[i].head % SLOTS].due_ns + delay_ns;
        if (next < 0 || due < next) {
          next = due;
        }
      }
    }
    struct timespec ts, *timeout = NULL;
    if (next >= 0) {
      int64_t wait = next - now_ns();
      if (wait < 0) {
        wait = 0;
      }
      ts.tv_sec = wait / 1000000000;
      ts.tv_nsec = wait % 1000000000;
      timeout = &ts;
    }
    struct pollfd pfd[2] = {{here, POLLIN, 0}, {there, POLLIN, 0}};
    int n = ppoll(pfd, 2, timeout, NULL);
    if (n < 0 && errno != EINTR) {
      fprintf(stderr, "delay_link: ppoll: %s\n", strerror(errno));
      return 1;
    }
    if (n > 0) {
      if (pfd[0].revents & POLLIN) {
        receive(&dirs[0]);
      }
      if (pfd[1].revents & POLLIN) {
        receive(&dirs[1]);
      }
    }
    send_due(&dirs[0], delay_ns);
    send_due(&dirs[1], delay_ns);
  }
  write_stats(argv[5], dirs, rt, delay_ns / 1000);
  return 0;
}
