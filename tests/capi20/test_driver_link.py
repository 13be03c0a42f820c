"""The driver's EOF check (capi.md §3: libcapi20 reports a closed peer as "queue empty")."""

from __future__ import annotations

import os
import socket

from ccbs_isdn.drivers.capi20.driver import _Link


def test_eof_is_told_apart_from_an_idle_or_partly_filled_socket() -> None:
    ours, peer = socket.socketpair()
    link = _Link(1, ours.fileno())
    try:
        assert not link.peer_closed()  # idle
        peer.send(b"\x00")  # a frame cut inside its length prefix
        assert not link.peer_closed()
        assert ours.recv(1) == b"\x00"
        peer.close()
        assert link.peer_closed()
        # the library's own descriptor stayed blocking
        assert ours.getblocking()
    finally:
        link.close()
        ours.close()


def test_a_kernel_device_descriptor_is_no_socket() -> None:
    read_end, write_end = os.pipe()
    try:
        link = _Link(1, read_end)
        assert link.peek is None
        assert not link.peer_closed()
        link.close()
        os.fstat(read_end)  # the library's descriptor is untouched
    finally:
        os.close(read_end)
        os.close(write_end)
