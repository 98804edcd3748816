"""The per-step data plane: one TCP connection from the coordinator to each shard.

Ray stays the control plane (placement, building, get_state / reset / checkpoints, failure
detection). A step is a 9-byte header and the raw action bytes out, a 17-byte header and the
raw result bytes back, received straight into the coordinator's global array: no pickling, no
Ray task and no object-store entry per step. On a busy 2-core machine a Ray actor call costs
2-5 ms, this connection a fraction of that (benchmarks/results/distributed.md).

The shard answers on its connection from a Ray method (`Shard.serve`), so every Taichi call
stays on the thread that runs the shard's other methods. The coordinator sends RELEASE, which
ends `serve`, before it makes any other Ray call to that shard; Ray runs one caller's calls to
an actor in order, so that call runs after `serve` returns.
"""

from __future__ import annotations

import pickle
import secrets
import socket
import struct
import time

import numpy as np

SCENE_STEP, TASK_STEP, RELEASE = 1, 2, 3
OK, FAILED = 0, 1
_REQUEST = struct.Struct("<BQ")  # op, payload bytes
_REPLY = struct.Struct("<BQd")  # status, payload bytes, seconds the shard spent on the request
TOKEN_BYTES = 16


class ChannelClosed(ConnectionError):
    """The other end closed the connection (its process ended) or it broke."""


def new_token() -> bytes:
    """The secret a shard expects first on its connection, so that only its coordinator drives it."""
    return secrets.token_bytes(TOKEN_BYTES)


def _recv_exactly(sock: socket.socket, view: memoryview) -> None:
    while view.nbytes:
        got = sock.recv_into(view)
        if got == 0:
            raise ChannelClosed("the connection was closed by the other end")
        view = view[got:]


def _recv_bytes(sock: socket.socket, n: int) -> bytearray:
    buf = bytearray(n)
    _recv_exactly(sock, memoryview(buf))
    return buf


def _bytes_of(array: np.ndarray) -> memoryview:
    return memoryview(np.ascontiguousarray(array)).cast("B")


def listen(host: str, ports: tuple[int, int] | None) -> socket.socket:
    """A listening socket on the first free port in ports = (first, last), or any free port."""
    if ports is None:
        return socket.create_server((host, 0))
    first, last = ports
    for port in range(first, last + 1):
        try:
            return socket.create_server((host, port))
        except OSError:
            continue
    raise OSError(f"no free port for the step connection in {first}..{last} on {host}")


class ShardEndpoint:
    """The shard's side: listens on this node's address, accepts its coordinator (the one that
    sends the token) and answers requests with `handlers[op](payload) -> np.ndarray`."""

    def __init__(self, host: str, token: bytes, ports: tuple[int, int] | None = None):
        self._token = token
        self._listener = listen(host, ports)
        self.address = (host, self._listener.getsockname()[1])
        self._conn: socket.socket | None = None

    def _connection(self) -> socket.socket:
        while self._conn is None:
            conn, _ = self._listener.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                conn.settimeout(10.0)  # a peer that connects and says nothing is dropped
                ok = secrets.compare_digest(bytes(_recv_bytes(conn, TOKEN_BYTES)), self._token)
                conn.settimeout(None)
            except (OSError, ChannelClosed):
                ok = False
            if ok:
                self._conn = conn
            else:
                conn.close()
        return self._conn

    def serve(self, handlers: dict) -> None:
        """Answer requests until RELEASE or until the coordinator hangs up. A handler's exception
        is sent back (the coordinator raises it naming this shard) and serving goes on."""
        conn = self._connection()
        header = bytearray(_REQUEST.size)
        while True:
            try:
                _recv_exactly(conn, memoryview(header))
            except (ChannelClosed, OSError):
                self._conn = None
                return
            op, size = _REQUEST.unpack(header)
            if op == RELEASE:
                return
            payload = _recv_bytes(conn, size)
            start = time.perf_counter()
            try:
                out = _bytes_of(handlers[op](payload))
                status = OK
            except Exception as e:  # noqa: BLE001 - every failure goes back to the coordinator
                out, status = memoryview(_pickle_error(e)), FAILED
            try:
                conn.sendall(_REPLY.pack(status, out.nbytes, time.perf_counter() - start))
                conn.sendall(out)
            except OSError:  # the coordinator is gone
                self._conn = None
                return


def _pickle_error(e: Exception) -> bytes:
    try:
        return pickle.dumps(e)
    except Exception:  # noqa: BLE001 - an exception that does not pickle travels as its text
        return pickle.dumps(RuntimeError(f"{type(e).__name__}: {e}"))


class ShardFailed(Exception):
    """The shard's handler raised `cause`; the connection is still in step."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


class CoordinatorLink:
    """The coordinator's side of one shard's connection."""

    def __init__(self, address: tuple[str, int], token: bytes, poll_s: float = 1.0, connect_timeout_s: float = 10.0):
        self._sock = socket.create_connection(tuple(address), timeout=connect_timeout_s)
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.sendall(token)
        self.poll_s = poll_s

    def send(self, op: int, payload: np.ndarray | None = None) -> None:
        body = _bytes_of(payload) if payload is not None else memoryview(b"")
        try:
            self._sock.sendall(_REQUEST.pack(op, body.nbytes))
            if body.nbytes:
                self._sock.sendall(body)
        except OSError as e:
            raise ChannelClosed(f"sending to the shard failed ({e})") from None

    def receive_into(self, out: np.ndarray, alive) -> float:
        """Read one reply into `out` (C-contiguous, exactly the reply's size); returns the shard's
        seconds. While waiting, `alive()` is asked every poll_s seconds and may raise, so that a
        shard whose node vanished without closing the connection is an error, not a hang.
        Raises ShardFailed with the shard's exception when its handler raised."""
        header = bytearray(_REPLY.size)
        self._sock.settimeout(self.poll_s)
        try:
            view = memoryview(header)
            while view.nbytes:
                try:
                    got = self._sock.recv_into(view)
                except TimeoutError:
                    alive()
                    continue
                if got == 0:
                    raise ChannelClosed("the shard closed its connection")
                view = view[got:]
            self._sock.settimeout(None)
            status, size, seconds = _REPLY.unpack(header)
            if status == FAILED:
                raise ShardFailed(pickle.loads(_recv_bytes(self._sock, size)))
            target = memoryview(out).cast("B")
            if size != target.nbytes:
                raise ChannelClosed(f"the shard sent {size} bytes where {target.nbytes} were expected")
            _recv_exactly(self._sock, target)
            return seconds
        except OSError as e:
            if isinstance(e, ChannelClosed):
                raise
            raise ChannelClosed(f"receiving from the shard failed ({e})") from None
        finally:
            self._sock.settimeout(None)

    def close(self) -> None:
        self._sock.close()
