"""Thousands of mutated real checkpoints (a Franka arm's, an MPM scene's) through checkpoint.read,
all in one child process (tests/read_mutants.py) so that a crash fails this test instead of
killing pytest: only CheckpointError ever comes out, what is accepted keeps read()'s promises,
and no file makes the reader allocate much more than the file.

Mutations: pickle-level (a value swapped for another type, wrapped in a list or dict, nested,
removed, added; dtype strings replaced; arrays replaced by forged ones: object and structured
dtypes, forged dtype state, wrong shape, order or data; memo and length bombs) and byte-level
(flips, opcode swaps, huge lengths, truncations, insertions, deletions, duplications), mixed.
CHECKPOINT_FUZZ_MUTANTS raises the count for a longer run (seeded, so a failure reproduces).
"""

import math
import os
import pickle
import pickletools
import random
import struct
import subprocess
import sys

import numpy as np
import pytest

import crafted
import sim as gs
from test_mpm import three_bodies

N_MUTANTS = int(os.environ.get("CHECKPOINT_FUZZ_MUTANTS", 3000))
SEED = int(os.environ.get("CHECKPOINT_FUZZ_SEED", 0))
OPCODES = [op.code.encode("latin1") for op in pickletools.opcodes]
DTYPES = ["f4", "<f4", ">f8", "i4", "b1", "c8", "f2", "O8", "|O", "V8", "U3", "S4", "M8", "m8[s]", "f3",
          "(2,)f4", "f4,i4", "i16", "", "q", "float32", "<f4 ", "f4\x00"]


def franka():
    scene = gs.Scene()
    scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=2)
    return scene


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """Real checkpoint files of a Franka arm and of an MPM scene (three materials), as dicts
    (built, not stepped: the file's form is what matters here, and stepping compiles kernels)."""
    out = []
    for scene in (franka(), three_bodies(n_envs=2, grid_density=8)[0]):
        path = tmp_path_factory.mktemp("base") / "ckpt.pkl"
        scene.save_checkpoint(path)
        with open(path, "rb") as f:
            out.append(pickle.load(f))  # our own file: trusted here
    return out


def _forged_array(rng, a):
    """`a` as numpy pickles it, with one part forged."""
    kind = rng.randrange(9)
    if kind == 0:
        return crafted.array(a, crafted.dtype(rng.choice(DTYPES), rng.choice("<>|="), rng.choice([0, 1, 8, 16, 63])))
    if kind == 1:
        return crafted.array(a, crafted.dtype(a.dtype.str[1:], a.dtype.str[0], version=rng.choice([2, 4, 5]),
                                              elsize=rng.choice([-1, 4, 2 ** 40])))
    if kind == 2:
        shape = rng.choice([a.shape[::-1], (a.size + 1,), (-1,), (2 ** 40, 0), (1,) * 40, (a.size,), [a.size], None])
        return crafted.array(a, shape=shape)
    if kind == 3:
        return crafted.array(a, order=rng.choice(["F", "K", "A", "X", None, 0]))
    if kind == 4:
        return crafted.array(a, raw=rng.choice([a.tobytes(), a.tobytes()[:-1], list(a.ravel()), "x", None,
                                                bytearray(2 * a.nbytes)]))
    if kind == 5:
        return crafted.reconstructed(a, crafted.dtype(rng.choice(DTYPES), rng.choice("<>|"), rng.choice([0, 1, 63])))
    if kind == 6:
        return crafted.object_array(rng.choice([[1, 2], list(range(a.size)), [crafted.object_scalar()]]))
    if kind == 7:
        return crafted.Forged(crafted._numeric._frombuffer, (bytearray(a.tobytes()), crafted.dtype("f4"), a.shape, "K",
                                                            rng.choice([(0,), tuple(range(a.ndim))[::-1], (5, 5), "x"])))
    return crafted.Forged(crafted._multiarray._reconstruct, (rng.choice([np.ndarray, np.dtype, None]), (0,), b"b"))


def _evil(rng, original):
    """A value to put where `original` was."""
    choices = [
        lambda: None, lambda: True, lambda: -1, lambda: 1.5, lambda: math.nan, lambda: math.inf,
        lambda: 2 ** 31, lambda: 2 ** 53 + 1, lambda: 2 ** 63 - 1, lambda: 2 ** 64 + 1, lambda: -2 ** 70,
        lambda: "", lambda: "x" * 5000, lambda: b"bytes", lambda: bytearray(b"ba"), lambda: (1, 2), lambda: [],
        lambda: {}, lambda: {1: 2}, lambda: {"a"}, lambda: frozenset(), lambda: complex(1, 2),
        lambda: np.float32(2.5), lambda: np.int64(5), lambda: np.longdouble(1), lambda: np.zeros(3, np.float32),
        lambda: np.zeros((2, 2), ">f8"), lambda: crafted.object_scalar(), lambda: crafted.dtype("f4"),
        lambda: crafted.dtype("O8", "|"), lambda: crafted.nested_lists(rng.choice([31, 33, 5000])),
        lambda: crafted.memo_put(rng.choice([2 ** 31, 2 ** 32 - 1, 2 ** 26])),
        lambda: crafted.declared_bytes(rng.choice([b"\x96", b"\x8e", b"\x8d"]), rng.choice([2 ** 40, 2 ** 62, 10 ** 6])),
        lambda: [original], lambda: {"x": original}, lambda: [[[original]]],
        lambda: _shared_bomb(), lambda: _cycle(),
    ]
    if isinstance(original, np.ndarray):
        choices += [lambda: _forged_array(rng, original)] * 12 + [
            lambda: original.astype(rng.choice([np.float64, np.int64, ">f4", np.bool_, np.complex64])),
            lambda: original[..., :1], lambda: original[None], lambda: np.asfortranarray(original)]
    if isinstance(original, str):
        choices += [lambda: rng.choice(DTYPES)] * 8 + [lambda: original + "x", lambda: original.upper()]
    if type(original) is int:
        choices += [lambda: original + rng.choice([-1, 1, 2 ** 62])] * 4
    return rng.choice(choices)()


def _shared_bomb():
    node = [0]
    for _ in range(40):  # 2**40 visits through 40 memo references
        node = [node, node]
    return node


def _cycle():
    node = []
    node.append(node)
    return node


def _slots(tree):
    """Every (container, key) in a checkpoint dict, arrays and meta included."""
    out, stack, seen = [], [tree], {id(tree)}
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in items:
            out.append((node, k))
            if isinstance(v, (dict, list)) and id(v) not in seen:  # shared and cyclic ones once
                seen.add(id(v))
                stack.append(v)
    return out


def structural(rng, base: bytes):
    data = pickle.loads(base)  # a fresh copy of our own file
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        slots = _slots(data)
        if not slots:
            break
        node, key = rng.choice(slots)
        action = rng.random()
        if action < 0.75:
            node[key] = _evil(rng, node[key])
        elif action < 0.85:
            del node[key]
        elif isinstance(node, dict):
            node[rng.choice(["extra", "meta", "timestamp", 5, ("t",)])] = _evil(rng, None)
        else:
            node.append(node[key])  # shared: pickled once, referenced twice
    return crafted.dumps(data, protocol=rng.choice([5, 5, 5, 4, 2]))


def bytewise(rng, blob):
    b = bytearray(blob)
    for _ in range(rng.choice([1, 1, 2, 4])):
        i = rng.randrange(len(b))
        kind = rng.randrange(7)
        if kind == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif kind == 1:
            b[i:i + 1] = rng.choice(OPCODES)
        elif kind == 2:
            b[i:i + 8] = struct.pack("<Q", rng.choice([2 ** 31, 2 ** 40, 2 ** 62, 2 ** 64 - 1, len(b) + 1]))
        elif kind == 3:
            del b[i:]
        elif kind == 4:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elif kind == 5:
            del b[i:i + rng.randrange(1, 64)]
        else:
            b[i:i] = b[i:i + rng.randrange(1, 256)]
        if not b:
            break
    return bytes(b)


def mutants(bases, n, seed):
    rng = random.Random(seed)
    plain = [pickle.dumps(b, protocol=5) for b in bases]
    out = []
    for i in range(n):
        base = plain[i % len(plain)]
        r = rng.random()
        if r < 0.45:
            out.append(structural(rng, base))
        elif r < 0.8:
            out.append(bytewise(rng, base))
        else:
            out.append(bytewise(rng, structural(rng, base)))
    return out


def test_only_checkpoint_error_escapes_from_mutated_checkpoints(bases, tmp_path):
    blobs = mutants(bases, N_MUTANTS, SEED) + [pickle.dumps(b, protocol=5) for b in bases]
    bundle = tmp_path / "mutants.pkl"
    with open(bundle, "wb") as f:
        pickle.dump(blobs, f)
    child = os.path.join(os.path.dirname(__file__), "read_mutants.py")
    proc = subprocess.run([sys.executable, child, str(bundle), str(tmp_path / "scratch.pkl")],
                          capture_output=True, text=True, timeout=600)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and lines and lines[-1].startswith("REPORT "), (
        f"the reader's process died (exit {proc.returncode}) on mutant {lines[-1] if lines else '?'} "
        f"(CHECKPOINT_FUZZ_SEED={SEED}):\n{proc.stderr[-3000:]}")
    report = __import__("json").loads(lines[-1][len("REPORT "):])
    assert report["n_escaped"] == 0, report["escaped"]
    assert report["broken"] == [], report["broken"]
    counts = report["counts"]
    assert counts["accepted"] >= 2 and counts["CheckpointError"] > N_MUTANTS // 10 \
        and counts["UnsafeCheckpointError"] > N_MUTANTS // 50, counts  # the mutants reach every kind of check
    assert report["rss_growth_mb"] < 200, report  # a 2**31 memo index or 2**62-byte length allocates nothing
