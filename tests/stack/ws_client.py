"""A minimal NATS client over WebSocket, for tests: what a browser says, byte for byte.

nats-py speaks WebSocket only with aiohttp installed; the NATS protocol itself is a
few text lines, so the tests speak it over `websocket-client` (what jupyter_server
uses) and prove the listener, the JWT login and the permissions without a browser.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import nkeys
import websocket

from labkit.nsc.creds import parse_creds


@dataclass
class WsNatsClient:
    """One connection: `connect`, `subscribe`, `publish`, `ping`, `next_message`."""

    url: str
    timeout: float = 10.0
    sslopt: dict[str, object] | None = None  # wss://: e.g. {"ca_certs": path}
    _ws: websocket.WebSocket | None = None
    _buffer: bytes = b""
    errors: list[str] = field(default_factory=list)

    def connect(self, creds: str, *, sign_with: str | None = None) -> dict[str, object]:
        """Log in with `creds` (their seed signs the server's nonce, as a browser's does).

        `sign_with` signs with another seed (a forged login). Returns the server's INFO.
        """
        self._ws = websocket.create_connection(self.url, timeout=self.timeout, sslopt=self.sslopt)
        line = self._line()
        assert line.startswith(b"INFO "), line
        info: dict[str, object] = json.loads(line[5:])
        user_jwt, seed = parse_creds(creds)
        signer = nkeys.from_seed((sign_with or seed).encode())
        signature = base64.urlsafe_b64encode(signer.sign(str(info["nonce"]).encode()))
        connect = {
            "jwt": user_jwt,
            "sig": signature.decode().rstrip("="),
            "verbose": False,
            "pedantic": False,
            "protocol": 1,
            "headers": True,
            "no_responders": True,
            "name": "labkit websocket test",
            "lang": "python-test",
            "version": "0",
        }
        self._send(f"CONNECT {json.dumps(connect)}\r\n")
        self.ping()
        return info

    def subscribe(self, subject: str, sid: int) -> None:
        self._send(f"SUB {subject} {sid}\r\n")

    def publish(self, subject: str, payload: bytes) -> None:
        self._send(f"PUB {subject} {len(payload)}\r\n".encode() + payload + b"\r\n")

    def ping(self) -> None:
        """PING and wait for PONG: everything sent before has been handled by the server."""
        self._send("PING\r\n")
        while True:
            line = self._line()
            if line == b"PONG":
                return
            self._other(line)

    def next_message(self, timeout: float | None = None) -> tuple[str, bytes]:
        """The next MSG that arrives: (subject, payload); TimeoutError after `timeout` s."""
        assert self._ws is not None, "connect() first"
        self._ws.settimeout(timeout or self.timeout)
        try:
            return self._next_message()
        except websocket.WebSocketTimeoutException:
            raise TimeoutError(f"no message within {timeout or self.timeout} s") from None
        finally:
            self._ws.settimeout(self.timeout)

    def _next_message(self) -> tuple[str, bytes]:
        while True:
            line = self._line()
            if line.startswith(b"MSG "):
                parts = line.split()
                size = int(parts[-1])
                payload = self._exactly(size + 2)[:size]
                return parts[1].decode(), payload
            self._other(line)

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def _other(self, line: bytes) -> None:
        if line.startswith(b"-ERR"):
            self.errors.append(line.decode())
            if "Authorization Violation" in line.decode():
                raise PermissionError(line.decode())
        elif line == b"PING":
            self._send("PONG\r\n")

    def _send(self, data: str | bytes) -> None:
        assert self._ws is not None, "connect() first"
        self._ws.send_binary(data.encode() if isinstance(data, str) else data)

    def _fill(self) -> None:
        assert self._ws is not None, "connect() first"
        frame = self._ws.recv()
        if not frame:
            raise ConnectionError("the server closed the WebSocket")
        self._buffer += frame.encode() if isinstance(frame, str) else frame

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            self._fill()
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data
