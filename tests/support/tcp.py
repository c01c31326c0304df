"""Which loopback TCP connections a server still holds, from the kernel's table (/proc/net/tcp).

A client cannot tell from its own socket when the server has closed a connection it first
half-closed (the client saw its end of stream long before): the kernel's table can. A socket
a process holds has an inode; one the process has closed keeps only an orphan entry (inode 0)
while TCP finishes, or none.
"""

import time
from pathlib import Path

TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def held_ports(server_port: int) -> set[int]:
    """The client ports of the connections to ``server_port`` that a process still holds."""
    held = set()
    for table in TCP_TABLES:
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if _port(local) == server_port and _port(remote) != 0 and inode != "0":
                held.add(_port(remote))
    return held


def seconds_until_released(server_port: int, client_ports: set[int], limit: float) -> float:
    """How long until the server holds none of the connections from ``client_ports`` (polled
    every 50 ms); ``limit`` or more when it still holds one then."""
    started = time.monotonic()
    while held_ports(server_port) & client_ports:
        if time.monotonic() - started >= limit:
            break
        time.sleep(0.05)
    return time.monotonic() - started
