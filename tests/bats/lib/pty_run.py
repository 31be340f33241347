#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Runs a command on a new pseudo-terminal (as an interactive shell would, in
# the terminal's foreground), types the given inputs with pauses, and prints
# everything the terminal showed, then "exit N".
# Usage: pty_run.py INPUTS_JSON -- COMMAND [ARGS...]
# INPUTS_JSON: a list of [delay_seconds, "text"] ("\u0003" is Ctrl-C).
import json
import os
import pty
import select
import sys
import time

inputs = json.loads(sys.argv[1])
argv = sys.argv[sys.argv.index("--") + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)

out = b""


def pump(seconds):
    global out
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data:
                return
            out += data


for delay, text in inputs:
    pump(delay)
    os.write(fd, text.encode())
deadline = time.monotonic() + 20
status = None
while time.monotonic() < deadline:
    pump(0.1)
    done, st = os.waitpid(pid, os.WNOHANG)
    if done == pid:
        status = st
        break
pump(0.2)
sys.stdout.write(out.decode(errors="replace").replace("\r\n", "\n"))
if status is None:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    print("\nexit timeout")
else:
    print("\nexit %d" % os.waitstatus_to_exitcode(status))
