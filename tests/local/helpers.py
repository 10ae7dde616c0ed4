"""Helpers for the local-stack tests."""
from __future__ import annotations

LOOPBACK_V4 = "0100007F"  # 127.0.0.1 as /proc/net/tcp prints it
LOOPBACK_V4_MAPPED = "0000000000000000FFFF00000100007F"  # ::ffff:127.0.0.1 in /proc/net/tcp6
LOOPBACK_ADDRESSES = {LOOPBACK_V4, LOOPBACK_V4_MAPPED, "00000000000000000000000001000000"}  # + ::1


def listening_addresses(port: int) -> set[str]:
    """Local addresses of every socket listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                address, hex_port = fields[1].split(":")
                if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                    found.add(address)
    return found
