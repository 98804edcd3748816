"""The per-step data plane: one TCP connection from the coordinator to each shard.

Ray stays the control plane (placement, building, get_state / reset / checkpoints, failure
detection). A step is a 9-byte header and the raw action bytes out, a 17-byte header and the
raw result bytes back, received straight into the coordinator's global array: no pickling, no
Ray task and no object-store entry per step. On a busy 2-core machine a Ray actor call costs
2-5 ms, this connection a fraction of that (benchmarks/results/distributed.md).

Nothing read from the wire is unpickled: a reply is raw bytes of the size the coordinator
expects, or a failure as the exception's type name and message (utf-8, at most
MAX_ERROR_BYTES). Both ends prove they hold the scene's secret when the connection opens, and it
is TLS where Ray runs with TLS (see step_auth). Every read of a reply has a deadline.

The shard answers on its connection from a Ray method (`Shard.serve`), so every Taichi call
stays on the thread that runs the shard's other methods. The coordinator sends RELEASE, which
ends `serve`, before it makes any other Ray call to that shard; Ray runs one caller's calls to
an actor in order, so that call runs after `serve` returns.
"""

from __future__ import annotations

import builtins
import socket
import struct
import time

import numpy as np

from genesis_dist import step_auth

SCENE_STEP, TASK_STEP, RELEASE = 1, 2, 3
OK, FAILED = 0, 1
_REQUEST = struct.Struct("<BQ")  # op, payload bytes
_REPLY = struct.Struct("<BQd")  # status, payload bytes, seconds the shard spent on the request
MAX_ERROR_BYTES = 8192
new_token = step_auth.new_secret


class ChannelClosed(ConnectionError):
    """The other end closed the connection (its process ended), it broke, or it fell out of step."""


class StepTimeout(ChannelClosed):
    """The shard did not take the request or send its whole reply before the deadline: it is
    frozen or far too slow. The connection is out of step; close it."""


def _recv_exactly(sock: socket.socket, view: memoryview) -> None:
    while view.nbytes:
        got = sock.recv_into(view)
        if got == 0:
            raise ChannelClosed("the connection was closed by the other end")
        view = view[got:]


def _recv_by(sock: socket.socket, view: memoryview, deadline: float, alive, poll_s: float) -> None:
    """Fill `view` before `deadline` (time.monotonic()), asking alive() every poll_s while waiting."""
    while view.nbytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StepTimeout("no whole reply before the deadline")
        sock.settimeout(min(poll_s, remaining))
        try:
            got = sock.recv_into(view)
        except TimeoutError:
            alive()
            continue
        if got == 0:
            raise ChannelClosed("the shard closed its connection")
        view = view[got:]


def _bytes_of(array: np.ndarray) -> memoryview:
    return memoryview(np.ascontiguousarray(array)).cast("B")


def listen(host: str, ports: tuple[int, int] | None) -> socket.socket:
    """A listening socket on the first free port in ports = (first, last), or any free port."""
    if ports is None:
        return socket.create_server((host, 0), backlog=128)
    first, last = ports
    for port in range(first, last + 1):
        try:
            return socket.create_server((host, port), backlog=128)
        except OSError:
            continue
    raise OSError(f"no free port for the step connection in {first}..{last} on {host}")


def encode_error(e: BaseException) -> bytes:
    """What travels for a failed request: "TypeName\\nmessage", utf-8, at most MAX_ERROR_BYTES."""
    return f"{type(e).__name__}\n{e}".encode("utf-8", "replace")[:MAX_ERROR_BYTES]


class ShardFailed(Exception):
    """The shard's handler raised; `type_name` and `message` are what it sent. `cause` is an
    instance of that type where it is a built-in exception (ValueError, ...), else this error
    itself. The connection is still in step."""

    def __init__(self, type_name: str, message: str):
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message = type_name, message
        known = getattr(builtins, type_name, None) if type_name.isidentifier() else None
        self.cause = known(message) if isinstance(known, type) and issubclass(known, Exception) else self

    @classmethod
    def decode(cls, data: bytes) -> "ShardFailed":
        type_name, _, message = bytes(data).decode("utf-8", "replace").partition("\n")
        return cls(type_name, message)


class ShardEndpoint:
    """The shard's side: listens on this node's address, accepts its coordinator (the peer that
    proves the scene's secret; see step_auth) and answers requests with `handlers[op](payload) -> np.ndarray`."""

    def __init__(self, host: str, token: bytes, ports: tuple[int, int] | None = None):
        self._listener = listen(host, ports)
        self.address = (host, self._listener.getsockname()[1])
        self._acceptor = step_auth.Acceptor(self._listener, token)
        self._conn: socket.socket | None = None

    def serve(self, handlers: dict) -> None:
        """Answer requests until RELEASE or until the coordinator hangs up. A handler's exception
        is sent back (the coordinator raises it naming this shard) and serving goes on."""
        if self._conn is None:
            self._conn = self._acceptor.take()
        conn = self._conn
        if conn is None:  # closed
            return
        header = bytearray(_REQUEST.size)
        while True:
            try:
                _recv_exactly(conn, memoryview(header))
                op, size = _REQUEST.unpack(header)
                if op == RELEASE:
                    return
                payload = bytearray(size)
                _recv_exactly(conn, memoryview(payload))
            except (ChannelClosed, OSError):
                self._drop()
                return
            start = time.perf_counter()
            try:
                out = _bytes_of(handlers[op](payload))
                status = OK
            except Exception as e:  # noqa: BLE001 - every failure goes back to the coordinator
                out, status = memoryview(encode_error(e)), FAILED
            try:
                conn.sendall(_REPLY.pack(status, out.nbytes, time.perf_counter() - start))
                conn.sendall(out)
            except OSError:  # the coordinator is gone
                self._drop()
                return

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        self._acceptor.close()
        self._listener.close()
        self._drop()


class CoordinatorLink:
    """The coordinator's side of one shard's connection (opened with the handshake of step_auth)."""

    def __init__(self, address: tuple[str, int], token: bytes, poll_s: float = 1.0,
                 connect_timeout_s: float = step_auth.HANDSHAKE_TIMEOUT_S):
        self._sock = step_auth.connect(address, token, connect_timeout_s)
        self.poll_s = poll_s

    def send(self, op: int, payload: np.ndarray | None = None, deadline: float | None = None) -> None:
        """Send one request; with a deadline (time.monotonic()), a shard that does not take it in
        time (a frozen one, once the socket buffers are full) raises StepTimeout."""
        body = _bytes_of(payload) if payload is not None else memoryview(b"")
        try:
            self._sock.settimeout(None if deadline is None else max(deadline - time.monotonic(), 1e-3))
            self._sock.sendall(_REQUEST.pack(op, body.nbytes))
            if body.nbytes:
                self._sock.sendall(body)
        except TimeoutError:
            raise StepTimeout("the shard did not take the request before the deadline") from None
        except OSError as e:
            raise ChannelClosed(f"sending to the shard failed ({e})") from None

    def receive_into(self, out: np.ndarray, alive, deadline: float) -> float:
        """Read one reply into `out` (C-contiguous, exactly the reply's size) before `deadline`
        (time.monotonic()); returns the shard's seconds. While waiting, `alive()` is asked every
        poll_s seconds and may raise, so that a shard whose node vanished without closing the
        connection is an error, not a hang. Raises StepTimeout past the deadline (the connection
        is then out of step: close it), ShardFailed where the shard's handler raised."""
        header = bytearray(_REPLY.size)
        try:
            _recv_by(self._sock, memoryview(header), deadline, alive, self.poll_s)
            status, size, seconds = _REPLY.unpack(header)
            if status == FAILED:
                if size > MAX_ERROR_BYTES:
                    raise ChannelClosed(f"the shard sent an error of {size} bytes (at most {MAX_ERROR_BYTES})")
                message = bytearray(size)
                _recv_by(self._sock, memoryview(message), deadline, alive, self.poll_s)
                raise ShardFailed.decode(message)
            if status != OK:
                raise ChannelClosed(f"the shard sent a reply of unknown status {status}")
            target = memoryview(out).cast("B")
            if size != target.nbytes:
                raise ChannelClosed(f"the shard sent {size} bytes where {target.nbytes} were expected")
            _recv_by(self._sock, target, deadline, alive, self.poll_s)
            return seconds
        except OSError as e:
            if isinstance(e, ChannelClosed):
                raise
            raise ChannelClosed(f"receiving from the shard failed ({e})") from None

    def close(self) -> None:
        self._sock.close()
