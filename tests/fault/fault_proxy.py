# SPDX-License-Identifier: MIT
"""A fault-injecting TCP proxy on 127.0.0.1 for the fault suite.

FaultProxy(upstream_port) listens on a free loopback port and forwards each
connection to 127.0.0.1:upstream_port. Its mode can be switched at any time:

  pass       forward both ways
  blackhole  forward nothing (connections stay open, bytes wait in the
             kernel buffers; new connections are accepted but not connected
             upstream): like a network partition that drops every packet
  reset      close every connection with an RST (SO_LINGER 0) and reset
             each new one as soon as it is accepted
  hold-replies  forward client -> server only: requests are executed, the
             replies wait (an asymmetric partition)

Back in "pass", held data flows again, as after a healed partition.
Runs in one thread (selectors); stdlib only.

Standalone: python3 fault_proxy.py UPSTREAM_PORT prints the listening port
and reads modes (pass/blackhole/reset/hold-replies) from stdin, one a line.
"""

import os
import selectors
import socket
import struct
import sys
import threading

_RST_LINGER = struct.pack("ii", 1, 0)


class _Pair:
    def __init__(self, client):
        self.client = client
        self.upstream = None
        self.to_up = b""  # bytes read from the client, not yet sent up
        self.to_client = b""


class FaultProxy:
    def __init__(self, upstream_port, upstream_host="127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.mode = "pass"
        self.pairs = []
        self.resets = 0
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._lock = threading.Lock()
        self._pending_mode = None
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="fault-proxy")

    # --- control (any thread) ---

    def start(self):
        self._thread.start()
        return self

    def set_mode(self, mode):
        assert mode in ("pass", "blackhole", "reset", "hold-replies"), mode
        with self._lock:
            self._pending_mode = mode
        os.write(self._wake_w, b"m")

    def stop(self):
        self._stop = True
        os.write(self._wake_w, b"s")
        self._thread.join(timeout=5)

    # --- the loop (proxy thread only) ---

    @staticmethod
    def _rst(sock):
        if sock is None:
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST_LINGER)
        except OSError:
            pass
        sock.close()

    def _drop(self, pair, rst):
        for s in (pair.client, pair.upstream):
            if s is None:
                continue
            try:
                self._sel.unregister(s)
            except (KeyError, ValueError):
                pass
            if rst:
                self._rst(s)
            else:
                s.close()
        if pair in self.pairs:
            self.pairs.remove(pair)

    def _connect_up(self, pair):
        up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            up.settimeout(2)
            up.connect(self.upstream)
        except OSError:
            up.close()
            # Upstream down (restarting): the client sees a reset, as it
            # would from a dead server.
            self._drop(pair, rst=True)
            return False
        up.setblocking(False)
        pair.upstream = up
        return True

    def _register(self, pair):
        for s in (pair.client, pair.upstream):
            if s is None:
                continue
            hold = self.mode == "hold-replies"
            ev = 0 if (hold and s is pair.upstream) else selectors.EVENT_READ
            if (s is pair.client and pair.to_client and not hold) or (
                    s is pair.upstream and pair.to_up):
                ev |= selectors.EVENT_WRITE
            if ev == 0:
                try:
                    self._sel.unregister(s)
                except (KeyError, ValueError):
                    pass
                continue
            try:
                self._sel.modify(s, ev, pair)
            except KeyError:
                self._sel.register(s, ev, pair)

    def _unregister(self, pair):
        for s in (pair.client, pair.upstream):
            if s is None:
                continue
            try:
                self._sel.unregister(s)
            except (KeyError, ValueError):
                pass

    def _apply_mode(self, mode):
        self.mode = mode
        if mode == "reset":
            for pair in list(self.pairs):
                self.resets += 1
                self._drop(pair, rst=True)
        elif mode == "blackhole":
            for pair in self.pairs:
                self._unregister(pair)
        else:  # pass, hold-replies
            for pair in list(self.pairs):
                if pair.upstream is None and not self._connect_up(pair):
                    continue
                self._register(pair)

    def _accept(self):
        while True:
            try:
                c, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            c.setblocking(False)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.mode == "reset":
                self.resets += 1
                self._rst(c)
                continue
            pair = _Pair(c)
            self.pairs.append(pair)
            if self.mode in ("pass", "hold-replies"):
                if self._connect_up(pair):
                    self._register(pair)

    def _pump(self, pair, sock, mask):
        if self.mode not in ("pass", "hold-replies"):
            return
        if self.mode == "hold-replies" and sock is pair.upstream and \
                not pair.to_up:
            self._register(pair)
            return
        other_buf = "to_up" if sock is pair.client else "to_client"
        if mask & selectors.EVENT_READ:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                self._drop(pair, rst=True)
                return
            if data == b"":
                # Half-close is not needed by RESP clients: close both.
                self._drop(pair, rst=False)
                return
            if data:
                setattr(pair, other_buf, getattr(pair, other_buf) + data)
        for s, attr in ((pair.upstream, "to_up"), (pair.client, "to_client")):
            buf = getattr(pair, attr)
            if not buf or s is None:
                continue
            if attr == "to_client" and self.mode == "hold-replies":
                continue
            try:
                n = s.send(buf)
                setattr(pair, attr, buf[n:])
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._drop(pair, rst=True)
                return
        if pair in self.pairs:
            self._register(pair)

    def _loop(self):
        self._sel.register(self.listener, selectors.EVENT_READ, "listen")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        while not self._stop:
            for key, mask in self._sel.select(timeout=0.5):
                if key.data == "listen":
                    self._accept()
                elif key.data == "wake":
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                    with self._lock:
                        mode, self._pending_mode = self._pending_mode, None
                    if mode is not None:
                        self._apply_mode(mode)
                else:
                    pair = key.data
                    if pair in self.pairs:
                        self._pump(pair, key.fileobj, mask)
        for pair in list(self.pairs):
            self._drop(pair, rst=False)
        self._sel.close()
        self.listener.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


def main():
    proxy = FaultProxy(int(sys.argv[1])).start()
    print(proxy.port, flush=True)
    for line in sys.stdin:
        line = line.strip()
        if line in ("pass", "blackhole", "reset", "hold-replies"):
            proxy.set_mode(line)
            print("mode", line, flush=True)
    proxy.stop()


if __name__ == "__main__":
    main()
