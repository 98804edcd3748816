"""Who may use a step connection: both ends prove they hold the scene's secret, and where Ray runs
with TLS (RAY_USE_TLS=1), the connection is TLS with Ray's own certificates.

The handshake (after the TLS handshake, where there is one):

    coordinator -> shard   MAGIC + nonce_c                                   (4 + 16 bytes)
    shard -> coordinator   nonce_s + HMAC(secret, "shard" + nonce_c + nonce_s)   (16 + 32)
    coordinator -> shard   HMAC(secret, "coordinator" + nonce_c + nonce_s)       (32)
    shard -> coordinator   ACCEPTED, and the shard queues the connection for `serve`   (1)

Each side checks the other's MAC in constant time before it says anything more; the two labels
differ, so neither answer can be reflected to the other side. A peer without the secret learns
nothing it can use: a fake shard is refused by the coordinator, a fake coordinator dropped by the
shard. The coordinator reads under one deadline for the whole handshake.

The shard accepts on a thread of its own (`Acceptor`): every peer still in its handshake sits on
one selector with its own deadline, so silent or many peers never delay the real coordinator.
That thread touches sockets only; Taichi stays on the shard's Ray method thread, which takes the
authenticated connections from a queue.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import queue
import secrets
import selectors
import socket
import ssl
import threading
import time

MAGIC = b"gds1"
NONCE_BYTES = 16
MAC_BYTES = 32
SECRET_BYTES = 32
ACCEPTED = b"\x01"
HANDSHAKE_TIMEOUT_S = 10.0  # a peer's whole handshake, at either end
TLS_VARIABLES = ("RAY_TLS_SERVER_CERT", "RAY_TLS_SERVER_KEY", "RAY_TLS_CA_CERT")


class PeerRefused(ConnectionError):
    """The peer did not prove that it holds the scene's secret (or did not finish its handshake in time)."""


def new_secret() -> bytes:
    """The scene's secret: Ray gives it to every shard when it is created (never sent on a step connection)."""
    return secrets.token_bytes(SECRET_BYTES)


def _mac(secret: bytes, label: bytes, nonce_c: bytes, nonce_s: bytes) -> bytes:
    return hmac.new(secret, label + nonce_c + nonce_s, hashlib.sha256).digest()


def ray_uses_tls() -> bool:
    return os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true")


def tls_context(server_side: bool) -> ssl.SSLContext | None:
    """Ray's TLS settings as an SSLContext for this end (None where Ray runs without TLS). Both ends
    present Ray's certificate and require the other's, signed by Ray's CA (mutual TLS, as Ray's gRPC
    does). Host names are not checked: the HMAC handshake inside proves which scene's shard it is."""
    if not ray_uses_tls():
        return None
    missing = [name for name in TLS_VARIABLES if not os.environ.get(name)]
    if missing:
        raise RuntimeError(f"RAY_USE_TLS is set but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.environ["RAY_TLS_SERVER_CERT"], os.environ["RAY_TLS_SERVER_KEY"])
    ctx.load_verify_locations(os.environ["RAY_TLS_CA_CERT"])
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _recv_before(sock: socket.socket, n: int, deadline: float) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PeerRefused("the shard did not finish its handshake in time")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(n - len(buf))
        except TimeoutError:
            continue
        if not chunk:
            raise PeerRefused("the peer closed the connection during the handshake")
        buf += chunk
    return bytes(buf)


def connect(address: tuple[str, int], secret: bytes, timeout_s: float = HANDSHAKE_TIMEOUT_S) -> socket.socket:
    """The coordinator's end: connect to a shard and run the handshake within timeout_s.
    Raises PeerRefused where the peer is not this scene's shard, OSError where it cannot be reached."""
    deadline = time.monotonic() + timeout_s
    sock = socket.create_connection(tuple(address), timeout=timeout_s)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ctx = tls_context(server_side=False)
        if ctx is not None:
            sock = ctx.wrap_socket(sock)
        nonce_c = secrets.token_bytes(NONCE_BYTES)
        sock.sendall(MAGIC + nonce_c)
        reply = _recv_before(sock, NONCE_BYTES + MAC_BYTES, deadline)
        nonce_s = reply[:NONCE_BYTES]
        if not hmac.compare_digest(reply[NONCE_BYTES:], _mac(secret, b"shard", nonce_c, nonce_s)):
            raise PeerRefused(f"the peer at {address[0]}:{address[1]} did not prove that it holds the scene's "
                              "secret: it is not this scene's shard")
        sock.sendall(_mac(secret, b"coordinator", nonce_c, nonce_s))
        if _recv_before(sock, len(ACCEPTED), deadline) != ACCEPTED:
            raise PeerRefused("the shard did not accept the connection")
        sock.settimeout(None)
        return sock
    except BaseException:
        sock.close()
        raise


class _Peer:
    """A connection whose handshake is under way on the shard's side."""

    def __init__(self, sock: socket.socket, deadline: float, tls: bool):
        self.sock, self.deadline, self.tls_pending = sock, deadline, tls
        self.buf = b""
        self.nonce_c = self.nonce_s = b""
        self.want_write = False  # registered for writability: the TLS handshake could not send


class Acceptor:
    """The shard's end: accepts on `listener` on a daemon thread, runs every peer's handshake with
    its own deadline, and queues the connections that prove the secret for `take()`."""

    def __init__(self, listener: socket.socket, secret: bytes, timeout_s: float = HANDSHAKE_TIMEOUT_S):
        self._listener, self._secret, self._timeout_s = listener, secret, timeout_s
        self._tls = tls_context(server_side=True)
        self._ready: queue.Queue = queue.Queue()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        listener.setblocking(False)
        self._selector.register(listener, selectors.EVENT_READ, "listener")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name="step-channel-acceptor", daemon=True)
        self._thread.start()

    def take(self) -> socket.socket | None:
        """The newest authenticated connection (older ones, already left by their coordinator, are
        closed); waits for one. None once closed."""
        conn = self._ready.get()
        while conn is not None:
            try:
                newer = self._ready.get_nowait()
            except queue.Empty:
                return conn
            conn.close()
            conn = newer
        return None

    def close(self) -> None:
        self._wake_w.send(b"x")
        self._thread.join(5)
        self._ready.put(None)

    # ------------------------------------------------------------------ the acceptor thread
    def _run(self) -> None:
        peers: dict[int, _Peer] = {}
        try:
            while True:
                timeout = max(0.0, min(p.deadline for p in peers.values()) - time.monotonic()) if peers else None
                for key, _ in self._selector.select(timeout):
                    if key.data == "wake":
                        return
                    if key.data == "listener":
                        self._accept(peers)
                    else:
                        self._advance(peers, key.data)
                now = time.monotonic()
                for peer in [p for p in peers.values() if p.deadline <= now]:
                    self._drop(peers, peer)
        finally:
            for peer in list(peers.values()):
                self._drop(peers, peer)
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _accept(self, peers: dict) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. out of file descriptors: try again on the next event
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            peer = _Peer(sock, time.monotonic() + self._timeout_s, self._tls is not None)
            peers[sock.fileno()] = peer
            self._selector.register(sock, selectors.EVENT_READ, peer)

    def _drop(self, peers: dict, peer: _Peer) -> None:
        peers.pop(peer.sock.fileno(), None)
        try:
            self._selector.unregister(peer.sock)
        except (KeyError, ValueError):
            pass
        peer.sock.close()

    def _advance(self, peers: dict, peer: _Peer) -> None:
        """Take the peer's handshake as far as the bytes it sent allow; drop it at the first wrong step."""
        try:
            if peer.want_write:
                peer.want_write = False
                self._selector.modify(peer.sock, selectors.EVENT_READ, peer)
            if peer.tls_pending:
                peer.sock.do_handshake()
                peer.tls_pending = False
            while True:
                need = len(MAGIC) + NONCE_BYTES if not peer.nonce_s else MAC_BYTES
                chunk = peer.sock.recv(need - len(peer.buf))
                if not chunk:
                    return self._drop(peers, peer)
                peer.buf += chunk
                if len(peer.buf) < need:
                    continue
                if not peer.nonce_s:
                    if not peer.buf.startswith(MAGIC):
                        return self._drop(peers, peer)
                    peer.nonce_c, peer.nonce_s, peer.buf = peer.buf[len(MAGIC):], secrets.token_bytes(NONCE_BYTES), b""
                    challenge = peer.nonce_s + _mac(self._secret, b"shard", peer.nonce_c, peer.nonce_s)
                    if peer.sock.send(challenge) != len(challenge):  # 48 bytes fit any socket buffer
                        return self._drop(peers, peer)
                    continue
                if not hmac.compare_digest(peer.buf, _mac(self._secret, b"coordinator", peer.nonce_c, peer.nonce_s)):
                    return self._drop(peers, peer)
                peers.pop(peer.sock.fileno(), None)
                self._selector.unregister(peer.sock)
                peer.sock.setblocking(True)
                peer.sock.sendall(ACCEPTED)  # before the socket is handed on: one thread at a time uses it
                self._ready.put(peer.sock)
                return
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            return  # more bytes to come
        except ssl.SSLWantWriteError:
            peer.want_write = True
            self._selector.modify(peer.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, peer)
        except OSError:  # a broken connection, a failed TLS handshake
            if peer.sock.fileno() in peers:
                self._drop(peers, peer)
