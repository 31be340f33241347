#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Stalls every thread of a process but its main one, for the tests.

    stall_thread.py PID SECONDS READY_FILE

Waits (up to 30 s) until PID has a second thread, stops each thread other
than the main one with ptrace(PTRACE_SEIZE) + PTRACE_INTERRUPT, which stops
just that thread and leaves the others running, writes the stopped thread
ids to READY_FILE, holds them stopped for SECONDS (or until PID is gone),
then exits: a tracer's exit detaches its tracees, which then run on. This is
how the tests make godislock's refresher thread stall for real, with no hook
in the binary.
"""
import ctypes
import os
import sys
import time

PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                        ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long


def threads(pid):
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return []


def ptrace(request, tid):
    if libc.ptrace(request, tid, None, None) != 0:
        err = ctypes.get_errno()
        sys.exit(f"stall_thread: ptrace({request:#x}, {tid}): "
                 f"{os.strerror(err)}")


def main():
    pid, seconds, ready = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    deadline = time.monotonic() + 30
    others = []
    while not others:
        if time.monotonic() > deadline or not os.path.exists(f"/proc/{pid}"):
            sys.exit(f"stall_thread: process {pid} never had a second thread")
        others = [t for t in threads(pid) if t != pid]
        time.sleep(0.005)
    for tid in others:
        ptrace(PTRACE_SEIZE, tid)
        ptrace(PTRACE_INTERRUPT, tid)
        os.waitpid(tid, WALL)  # the thread is stopped now
    with open(ready, "w") as f:
        f.write(" ".join(str(t) for t in others) + "\n")
    end = time.monotonic() + seconds
    while time.monotonic() < end and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.05)


if __name__ == "__main__":
    main()
