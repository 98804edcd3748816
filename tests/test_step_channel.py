"""The step connection between coordinator and shard (genesis_dist.step_channel), in one process:
the shard's end is served on a thread."""

import socket
import threading

import numpy as np
import pytest

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
    end._listener.close()


def serving(end, handlers=HANDLERS, times=1):
    """Serve on a thread `times` times (each ends at RELEASE or when the peer hangs up)."""
    def run():
        for _ in range(times):
            end.serve(handlers)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def never_dead():
    pass


def test_a_request_travels_as_raw_bytes_both_ways(endpoint):
    thread = serving(endpoint)
    link = sc.CoordinatorLink(endpoint.address, endpoint.token)
    for k in range(3):
        out = np.empty(5, np.float32)
        link.send(sc.SCENE_STEP, np.arange(5, dtype=np.float32) + k)
        seconds = link.receive_into(out, never_dead)
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
        link.receive_into(np.empty(3, np.float32), never_dead)
    assert isinstance(info.value.cause, ValueError) and "refused 12 bytes" in str(info.value.cause)
    out = np.empty(2, np.float32)
    link.send(sc.SCENE_STEP, np.ones(2, np.float32))
    link.receive_into(out, never_dead)
    np.testing.assert_array_equal(out, [2, 2])
    link.send(sc.RELEASE)
    thread.join(5)


def test_release_ends_serve_and_the_next_serve_keeps_the_connection(endpoint):
    thread = serving(endpoint, times=2)
    link = sc.CoordinatorLink(endpoint.address, endpoint.token)
    out = np.empty(1, np.float32)
    for value in (1.0, 3.0):
        link.send(sc.SCENE_STEP, np.array([value], np.float32))
        link.receive_into(out, never_dead)
        assert out[0] == 2 * value
        link.send(sc.RELEASE)
    thread.join(5)
    assert not thread.is_alive()


def test_a_peer_without_the_token_is_dropped(endpoint):
    thread = serving(endpoint)
    stranger = socket.create_connection(endpoint.address)
    stranger.sendall(b"x" * sc.TOKEN_BYTES)
    assert stranger.recv(1) == b""  # closed on it
    link = sc.CoordinatorLink(endpoint.address, endpoint.token)
    out = np.empty(1, np.float32)
    link.send(sc.SCENE_STEP, np.ones(1, np.float32))
    link.receive_into(out, never_dead)
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
        link.receive_into(np.empty(1, np.float32), never_dead)
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
        link.receive_into(np.empty(1, np.float32), alive)
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
        link.receive_into(np.empty(2, np.float32), never_dead)
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
