"""The step connection between coordinator and shard (genesis_dist.step_channel), in one process:
the shard's end is served on a thread."""

import os
import pickle
import socket
import ssl
import struct
import subprocess
import threading
import time

import numpy as np
import pytest

from genesis_dist import step_auth
from genesis_dist import step_channel as sc


def double(payload):
    return np.frombuffer(payload, np.float32) * 2


def fail(payload):
    raise ValueError(f"refused {len(payload)} bytes")


HANDLERS = {sc.SCENE_STEP: double, sc.TASK_STEP: fail}


@pytest.fixture
def endpoint():
    end = sc.ShardEndpoint("127.0.0.1", token := sc.new_token())
    end.token = token
    yield end
    end.close()


def serving(end, handlers=HANDLERS, times=1):
    """Serve on a thread `times` times (each ends at RELEASE or when the peer hangs up)."""
    def run():
        for _ in range(times):
            end.serve(handlers)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def assert_dropped(sock):
    """The other end closes `sock` (after at most a TLS alert) within 10 s."""
    sock.settimeout(10)
    try:
        while sock.recv(64):
            pass
    except ConnectionResetError:
        pass


def never_dead():
    pass


def soon(seconds=10.0):
    """A reply deadline (time.monotonic()) for the tests."""
    return time.monotonic() + seconds


def test_a_request_travels_as_raw_bytes_both_ways(endpoint):
    thread = serving(endpoint)
    link = sc.CoordinatorLink(endpoint.address, endpoint.token)
    for k in range(3):
        out = np.empty(5, np.float32)
        link.send(sc.SCENE_STEP, np.arange(5, dtype=np.float32) + k)
        seconds = link.receive_into(out, never_dead, soon())
        np.testing.assert_array_equal(out, (np.arange(5) + k) * 2)
        assert seconds >= 0
    link.send(sc.RELEASE)
    thread.join(5)
    assert not thread.is_alive()


def test_a_handler_error_comes_back_and_serving_goes_on(endpoint):
    thread = serving(endpoint)
    link = sc.CoordinatorLink(endpoint.address, endpoint.token)
    link.send(sc.TASK_STEP, np.zeros(3, np.float32))
    with pytest.raises(sc.ShardFailed) as info:
        link.receive_into(np.empty(3, np.float32), never_dead, soon())
    assert isinstance(info.value.cause, ValueError) and "refused 12 bytes" in str(info.value.cause)
    assert info.value.type_name == "ValueError"
    out = np.empty(2, np.float32)
    link.send(sc.SCENE_STEP, np.ones(2, np.float32))
    link.receive_into(out, never_dead, soon())
    np.testing.assert_array_equal(out, [2, 2])
    link.send(sc.RELEASE)
    thread.join(5)


def test_release_ends_serve_and_the_next_serve_keeps_the_connection(endpoint):
    thread = serving(endpoint, times=2)
    link = sc.CoordinatorLink(endpoint.address, endpoint.token)
    out = np.empty(1, np.float32)
    for value in (1.0, 3.0):
        link.send(sc.SCENE_STEP, np.array([value], np.float32))
        link.receive_into(out, never_dead, soon())
        assert out[0] == 2 * value
        link.send(sc.RELEASE)
    thread.join(5)
    assert not thread.is_alive()


def test_a_peer_without_the_secret_is_dropped(endpoint):
    thread = serving(endpoint)
    stranger = socket.create_connection(endpoint.address)
    stranger.sendall(endpoint.token)  # the old protocol: the token in clear
    assert_dropped(stranger)
    guesser = socket.create_connection(endpoint.address)
    guesser.sendall(step_auth.MAGIC + bytes(16))
    assert len(guesser.recv(48, socket.MSG_WAITALL)) == 48  # the shard's challenge ...
    guesser.sendall(bytes(32))  # ... answered without the secret
    assert_dropped(guesser)
    link = sc.CoordinatorLink(endpoint.address, endpoint.token)
    out = np.empty(1, np.float32)
    link.send(sc.SCENE_STEP, np.ones(1, np.float32))
    link.receive_into(out, never_dead, soon())
    assert out[0] == 2
    link.send(sc.RELEASE)
    thread.join(5)


def test_a_shard_that_hangs_up_is_an_error_not_a_hang(endpoint):
    def hang_up(payload):
        endpoint._conn.shutdown(socket.SHUT_RDWR)  # as when the shard's process ends
        return np.zeros(1, np.float32)

    thread = serving(endpoint, {sc.SCENE_STEP: hang_up})
    link = sc.CoordinatorLink(endpoint.address, endpoint.token)
    link.send(sc.SCENE_STEP, np.ones(1, np.float32))
    with pytest.raises(sc.ChannelClosed):
        link.receive_into(np.empty(1, np.float32), never_dead, soon())
    thread.join(5)
    assert not thread.is_alive()


def test_a_silent_shard_is_checked_with_alive_while_waiting(endpoint):
    release = threading.Event()

    def stall(payload):
        release.wait(10)
        return np.zeros(1, np.float32)

    thread = serving(endpoint, {sc.SCENE_STEP: stall})
    link = sc.CoordinatorLink(endpoint.address, endpoint.token, poll_s=0.05)
    link.send(sc.SCENE_STEP, np.ones(1, np.float32))
    calls = []

    def alive():
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the shard's node is gone")

    with pytest.raises(RuntimeError, match="node is gone"):
        link.receive_into(np.empty(1, np.float32), alive, soon())
    assert len(calls) == 3
    release.set()
    link.close()
    thread.join(5)
    assert not thread.is_alive()


def test_a_reply_of_the_wrong_size_is_refused(endpoint):
    thread = serving(endpoint)
    link = sc.CoordinatorLink(endpoint.address, endpoint.token)
    link.send(sc.SCENE_STEP, np.ones(4, np.float32))
    with pytest.raises(sc.ChannelClosed, match="16 bytes where 8 were expected"):
        link.receive_into(np.empty(2, np.float32), never_dead, soon())
    link.close()
    thread.join(5)


def test_listen_takes_the_first_free_port_of_a_range():
    taken = sc.listen("127.0.0.1", None)
    port = taken.getsockname()[1]
    try:
        got = sc.listen("127.0.0.1", (port, port + 50))
        assert port < got.getsockname()[1] <= port + 50
        got.close()
        with pytest.raises(OSError, match=f"no free port for the step connection in {port}..{port}"):
            sc.listen("127.0.0.1", (port, port))
    finally:
        taken.close()


def fake_shard(secret, then):
    """A peer on a shard's address that holds the secret (passes the handshake) and then does
    `then(conn)`; returns its address and thread."""
    listener = sc.listen("127.0.0.1", None)
    acceptor = step_auth.Acceptor(listener, secret)

    def run():
        conn = acceptor.take()
        op, size = struct.unpack("<BQ", conn.recv(9, socket.MSG_WAITALL))  # the request
        conn.recv(size, socket.MSG_WAITALL)
        then(conn)
        conn.settimeout(10)
        conn.recv(1)  # until the coordinator hangs up
        conn.close()
        acceptor.close()
        listener.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener.getsockname(), thread


class Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):  # unpickling this creates the file
        return open, (self.path, "w")


def test_nothing_a_shard_sends_is_unpickled(tmp_path):
    marker = tmp_path / "ran"
    body = pickle.dumps(Marker(str(marker)))
    address, thread = fake_shard(secret := sc.new_token(), lambda conn: conn.sendall(struct.pack("<BQd", sc.FAILED, len(body), 0.0) + body))
    link = sc.CoordinatorLink(address, secret)
    link.send(sc.SCENE_STEP, np.ones(1, np.float32))
    with pytest.raises(sc.ShardFailed) as info:
        link.receive_into(np.empty(1, np.float32), never_dead, soon())
    assert not marker.exists() and info.value.cause is info.value  # text, not an object
    link.close()
    thread.join(5)


def test_an_oversized_error_reply_is_refused_unread():
    address, thread = fake_shard(secret := sc.new_token(),
                                 lambda conn: conn.sendall(struct.pack("<BQd", sc.FAILED, 2**40, 0.0)))
    link = sc.CoordinatorLink(address, secret)
    link.send(sc.SCENE_STEP, np.ones(1, np.float32))
    with pytest.raises(sc.ChannelClosed, match="an error of 1099511627776 bytes"):
        link.receive_into(np.empty(1, np.float32), never_dead, soon())
    link.close()
    thread.join(5)


def test_a_fake_shard_is_refused_by_the_coordinator():
    """A peer on the shard's address that does not hold the secret cannot pass the handshake."""
    listener = sc.listen("127.0.0.1", None)

    def pretend():
        conn, _ = listener.accept()
        conn.recv(20)
        conn.sendall(os.urandom(48))  # a challenge with a made-up MAC
        conn.recv(1)

    thread = threading.Thread(target=pretend, daemon=True)
    thread.start()
    with pytest.raises(step_auth.PeerRefused, match="did not prove that it holds the scene's secret"):
        sc.CoordinatorLink(listener.getsockname(), sc.new_token())
    thread.join(5)
    listener.close()


def test_a_half_reply_is_a_timeout_not_a_hang():
    address, thread = fake_shard(secret := sc.new_token(),
                                 lambda conn: conn.sendall(struct.pack("<BQd", sc.OK, 16, 0.0) + bytes(8)))
    link = sc.CoordinatorLink(address, secret, poll_s=0.05)
    link.send(sc.SCENE_STEP, np.ones(4, np.float32))
    with pytest.raises(sc.StepTimeout):
        link.receive_into(np.empty(4, np.float32), never_dead, soon(0.5))
    link.close()
    thread.join(5)


def test_silent_peers_do_not_delay_the_coordinator(endpoint):
    """Three peers that connect and say nothing (or half a hello) while the coordinator connects:
    it is served at once (before, each held the shard for 10 s), and they are dropped at their deadline."""
    thread = serving(endpoint)
    silent = [socket.create_connection(endpoint.address) for _ in range(3)]
    silent[0].sendall(step_auth.MAGIC)
    link = sc.CoordinatorLink(endpoint.address, endpoint.token)
    out = np.empty(1, np.float32)
    link.send(sc.SCENE_STEP, np.ones(1, np.float32))
    link.receive_into(out, never_dead, soon(5))  # the old accept loop: 30 s
    assert out[0] == 2
    link.send(sc.RELEASE)
    thread.join(5)
    for peer in silent:
        peer.close()


def test_a_peer_that_stalls_its_handshake_is_dropped_at_its_deadline():
    listener = sc.listen("127.0.0.1", None)
    acceptor = step_auth.Acceptor(listener, sc.new_token(), timeout_s=0.3)
    try:
        peer = socket.create_connection(listener.getsockname())
        peer.sendall(step_auth.MAGIC)
        peer.settimeout(10)
        assert peer.recv(1) == b""
    finally:
        acceptor.close()
        listener.close()


def make_ca_and_cert(folder):
    """A self-signed CA and a certificate it signed (openssl), as Ray's TLS guide makes them."""
    folder.mkdir(exist_ok=True)
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
            "-subj", "/CN=test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "node.key", "-out", "node.csr", "-subj", "/CN=node")
    openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "node.crt", "-days", "1")
    return {"RAY_TLS_SERVER_CERT": str(folder / "node.crt"), "RAY_TLS_SERVER_KEY": str(folder / "node.key"),
            "RAY_TLS_CA_CERT": str(folder / "ca.crt")}


def test_with_ray_tls_the_step_connection_is_tls_with_rays_certificates(tmp_path, monkeypatch):
    for name, value in {"RAY_USE_TLS": "1", **make_ca_and_cert(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    end = sc.ShardEndpoint("127.0.0.1", token := sc.new_token())
    try:
        thread = serving(end)
        plain = socket.create_connection(end.address)  # a client without TLS is dropped
        plain.sendall(step_auth.MAGIC + bytes(16))
        assert_dropped(plain)
        link = sc.CoordinatorLink(end.address, token)
        assert isinstance(link._sock, ssl.SSLSocket) and link._sock.version() in ("TLSv1.2", "TLSv1.3")
        out = np.empty(3, np.float32)
        link.send(sc.SCENE_STEP, np.arange(3, dtype=np.float32))
        link.receive_into(out, never_dead, soon())
        np.testing.assert_array_equal(out, [0, 2, 4])
        link.send(sc.RELEASE)
        thread.join(5)
        monkeypatch.setenv("RAY_TLS_CA_CERT", make_ca_and_cert(tmp_path / "other")["RAY_TLS_CA_CERT"])
        with pytest.raises(ssl.SSLError):  # a coordinator that trusts another CA refuses this shard
            sc.CoordinatorLink(end.address, token)
    finally:
        end.close()
