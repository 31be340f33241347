#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Runs a command on a new pseudo-terminal (as an interactive shell would, in
# the terminal's foreground), types each input once the terminal has shown
# what it waits for, and prints everything the terminal showed, then
# "exit N".
# Usage: pty_run.py INPUTS_JSON -- COMMAND [ARGS...]
# INPUTS_JSON: a list of ["regex", "text"] ("\u0003" is Ctrl-C): waits until
# the output not yet matched by an earlier entry matches the (Python) regex,
# then types the text. If it does not show within PTY_RUN_WAIT seconds
# (default 30), prints the output and "pty_run: ..." and exits 1.
import json
import os
import pty
import re
import select
import sys
import time

inputs = json.loads(sys.argv[1])
argv = sys.argv[sys.argv.index("--") + 1:]
limit = float(os.environ.get("PTY_RUN_WAIT", "30"))
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)

out = b""


def pump(seconds):
    """Reads what the terminal shows, waiting up to `seconds` for it:
    "data", "idle" (nothing came) or "eof" (every writer closed it)."""
    global out
    r, _, _ = select.select([fd], [], [], seconds)
    if not r:
        return "idle"
    try:
        data = os.read(fd, 4096)
    except OSError:  # EIO: no process has the terminal open any more
        data = b""
    if not data:
        time.sleep(seconds)  # select() would report EOF again at once
        return "eof"
    out += data
    return "data"


def text():
    return out.decode(errors="replace").replace("\r\n", "\n")


def give_up(why):
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    sys.stdout.write(text())
    print("\npty_run: %s" % why)
    sys.exit(1)


seen = 0  # bytes of `out` already matched by an earlier entry
for pattern, typed in inputs:
    rx = re.compile(pattern.encode())
    end = time.monotonic() + limit
    while True:
        m = rx.search(out, seen)
        if m:
            seen = m.end()
            break
        if time.monotonic() >= end:
            give_up("no /%s/ within %gs" % (pattern, limit))
        if pump(0.05) == "eof":
            give_up("the terminal closed before /%s/ showed" % pattern)
    os.write(fd, typed.encode())
deadline = time.monotonic() + limit
status = None
while time.monotonic() < deadline:
    pump(0.05)
    done, st = os.waitpid(pid, os.WNOHANG)
    if done == pid:
        status = st
        break
# Whatever the command wrote just before it ended.
while pump(0.2) == "data":
    pass
sys.stdout.write(text())
if status is None:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    print("\nexit timeout")
else:
    print("\nexit %d" % os.waitstatus_to_exitcode(status))
