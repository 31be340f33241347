# SPDX-License-Identifier: MIT
"""Loopback ports for the servers the bench sections start."""

import socket


def free_port():
    """A loopback port the kernel just handed out (free unless taken
    before the server binds it)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
