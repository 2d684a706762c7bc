"""The fault harness itself: the proxy really forwards, cuts, refuses and black-holes; roles
are started and killed; the table counts what it is given."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from tests.faults.harness import FaultResult, TcpProxy, format_table
from tests.waiting import wait_until


class _Echo(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while True:
            data = self.request.recv(4096)
            if not data:
                return
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    server = _Echo(("127.0.0.1", 0), _EchoHandler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server.server_address[:2]
    finally:
        server.shutdown()
        server.server_close()


def _roundtrip(port: int, payload: bytes, timeout: float = 3.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def test_proxy_forwards_both_ways(echo: tuple[str, int]) -> None:
    with TcpProxy(echo) as proxy:
        payload = bytes(range(256)) * 1000
        assert _roundtrip(proxy.port, payload) == payload
        # a pump thread counts a chunk after it has passed it on, so the client can hold every byte
        # before the last chunk is counted: wait (bounded) for the counters, then check them exactly
        wait_until(lambda: proxy.bytes_down >= len(payload), 10, "the proxy's byte counters", every=0.01)
        assert proxy.bytes_up == len(payload) == proxy.bytes_down


def test_cut_resets_open_connections_and_later_ones_work(echo: tuple[str, int]) -> None:
    with TcpProxy(echo) as proxy:
        s = socket.create_connection(("127.0.0.1", proxy.port), timeout=3)
        s.sendall(b"ping")
        assert s.recv(4) == b"ping"
        assert proxy.cut() >= 1
        with pytest.raises(OSError):  # reset by peer, or a closed connection on the next write
            for _ in range(50):
                s.sendall(b"x" * 65536)
                if not s.recv(1):
                    raise ConnectionResetError("closed")
        s.close()
        assert _roundtrip(proxy.port, b"again") == b"again"


def test_block_refuses_until_unblocked(echo: tuple[str, int]) -> None:
    with TcpProxy(echo) as proxy:
        proxy.block()
        with pytest.raises(OSError):
            got = _roundtrip(proxy.port, b"hello")
            if got != b"hello":
                raise ConnectionResetError("nothing came back")
        proxy.unblock()
        assert _roundtrip(proxy.port, b"hello") == b"hello"


def test_hang_accepts_but_answers_nothing(echo: tuple[str, int]) -> None:
    with TcpProxy(echo) as proxy:
        proxy.hang()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5) as s:
            s.sendall(b"anyone?")
            with pytest.raises(TimeoutError):
                s.recv(1)
        proxy.unblock()
        assert _roundtrip(proxy.port, b"yes") == b"yes"


def test_table_counts_and_verdict() -> None:
    rows = [FaultResult("kafka killed", 100, 100, 100, 0, 0, 4, 4, 3.2),
            FaultResult("es cut", 100, 98, 97, 1, 1, None, None, None, roles_up=False, note="audit exited")]
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["fault", "sent"]
    assert "kafka killed" in lines[2] and lines[2].split()[-2:] == ["3.2", "yes"]
    assert lines[3].split()[-2:] == ["-", "NO"]
    assert "1 passed, 1 failed" in text and "audit exited" in text
    assert rows[0].ok and not rows[1].ok
