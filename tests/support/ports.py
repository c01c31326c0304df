"""Free loopback ports: every test server binds one the OS picked, never a fixed port."""

import socket

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def bound_listener() -> tuple[socket.socket, int]:
    """A socket already bound to a port the OS picked, and that port: no race for it."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    return listener, listener.getsockname()[1]
