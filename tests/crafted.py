"""Crafted checkpoint pickles, built the way an attacker would: from the very globals numpy's own
pickles name (numpy.dtype, _frombuffer, _reconstruct, scalar) with forged arguments and state,
and raw opcodes spliced in where no Python object pickles that way."""

import io
import pickle
import struct

import numpy as np

NUMPY_CORE = "numpy._core" if np.__version__ >= "2" else "numpy.core"
_multiarray = __import__(NUMPY_CORE + ".multiarray", fromlist=["_reconstruct"])
_numeric = __import__(NUMPY_CORE + ".numeric", fromlist=["_frombuffer"])

# flags numpy keeps in a dtype's pickled state: NPY_ITEM_REFCOUNT | ... (63 is an object dtype's)
REFCOUNT, OBJECT_FLAGS = 1, 63


class Forged:
    """Pickles as func(*args), then BUILD with `state` if given."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)

    def __deepcopy__(self, memo):
        return self  # copying would build it: the forged object in this process


class Raw:
    """Opcodes written as they are (they must push exactly one object)."""

    def __init__(self, ops: bytes):
        self.ops = ops

    def __reduce_ex__(self, protocol):
        raise _NeedsRaw  # the C pickler cannot write it: dumps() falls back to the Python one


class _NeedsRaw(Exception):
    pass


class _Pickler(pickle._Pickler):
    def save(self, obj, save_persistent_id=True):
        if type(obj) is Raw:
            self.write(obj.ops)
        else:
            super().save(obj, save_persistent_id)


def dumps(obj, protocol=5) -> bytes:
    try:
        return pickle.dumps(obj, protocol=protocol)
    except _NeedsRaw:
        out = io.BytesIO()
        _Pickler(out, protocol=protocol).dump(obj)
        return out.getvalue()


def dtype(spec, order="<", flags=0, version=3, elsize=-1):
    """numpy.dtype(spec) with the given pickled state; numpy applies all of it."""
    return Forged(np.dtype, (spec, False, True), (version, order, None, None, None, elsize, -1, flags))


def object_scalar(pointer: bytes = b"\x41" * 8):
    """A numpy scalar of an object dtype whose flags say "no objects": the bytes become a pointer."""
    return Forged(_multiarray.scalar, (dtype("O8", "|", flags=0), pointer))


def array(a: np.ndarray, forged_dtype=None, shape=None, order="C", raw=None):
    """`a` pickled as numpy does (protocol 5), with any part replaced."""
    return Forged(_numeric._frombuffer, (bytearray(a.tobytes()) if raw is None else raw,
                                         forged_dtype or dtype(a.dtype.str[1:], a.dtype.str[0]),
                                         a.shape if shape is None else shape, order))


def reconstructed(a: np.ndarray, forged_dtype):
    """`a` pickled as numpy does with protocols 0-4 (_reconstruct, then BUILD), with a forged dtype."""
    return Forged(_multiarray._reconstruct, (np.ndarray, (0,), b"b"), (1, a.shape, forged_dtype, False, a.tobytes()))


def object_array(items):
    """An object array as numpy pickles one (its data a list of Python objects)."""
    return Forged(_multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                  (1, (len(items),), dtype("O8", "|", flags=OBJECT_FLAGS), False, list(items)))


def nested_lists(depth: int) -> Raw:
    return Raw(b"(" * depth + b"]" + b"l" * depth)


def memo_put(index: int) -> Raw:
    """None, memoized at `index` (the C unpickler sizes its memo from it)."""
    return Raw(b"N" + b"r" + struct.pack("<I", index))


def declared_bytes(opcode: bytes, size: int) -> Raw:
    """A BYTEARRAY8 / BINBYTES8 / BINUNICODE8 declaring `size` bytes that the file does not hold."""
    return Raw(opcode + struct.pack("<Q", size))


def _with(base: dict, path: tuple, value) -> dict:
    """A copy of the checkpoint dict `base` with the item at `path` (keys) replaced by `value`."""
    out = dict(base, meta=dict(base["meta"]), arrays=dict(base["arrays"]))
    node = out
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return out


FINDINGS = ["object dtype in meta n_envs", "object dtype in step_index", "object dtype in timestamp",
            "REFCOUNT flag on a float32 array", "meta a list", "deep nesting", "layout=5", "step_index 2**63-1",
            "memo index 2**26 (1 GiB)"]


def findings(base: dict) -> dict[str, tuple[bytes, type, str]]:
    """The issue's findings, each as (file bytes, the error read() must raise, words it must say),
    made from a real checkpoint dict `base` (with meta, float32 arrays)."""
    from sim.checkpoint import CheckpointError, UnsafeCheckpointError

    key = next(iter(base["arrays"]))
    f32 = base["arrays"][key]
    unsafe, error = UnsafeCheckpointError, CheckpointError
    return {
        "object dtype in meta n_envs": (dumps(_with(base, ("meta", "n_envs"), object_scalar())), unsafe, "'O8' is not a plain"),
        "object dtype in step_index": (dumps(_with(base, ("step_index",), object_scalar())), unsafe, "'O8' is not a plain"),
        "object dtype in timestamp": (dumps(_with(base, ("timestamp",), object_scalar())), unsafe, "'O8' is not a plain"),
        "REFCOUNT flag on a float32 array": (
            dumps(_with(base, ("arrays", key), reconstructed(f32, dtype("f4", "<", flags=REFCOUNT)))), unsafe,
            r"dtype <f4 comes with the state \(3, '<', None, None, None, -1, -1, 1\)"),
        "meta a list": (dumps(_with(base, ("meta",), [1, 2])), error, r"meta is \[1, 2\], not a dict"),
        "deep nesting": (dumps(_with(base, ("meta", "scene"), nested_lists(100_000))), error, "nested more than 32 levels"),
        "layout=5": (dumps(_with(base, ("meta", "layout"), 5)), error, "meta layout is 5, not a list"),
        "step_index 2**63-1": (dumps(_with(base, ("step_index",), 2 ** 63 - 1)), error,
                               r"step_index is 9223372036854775807, not an int in \[0, 9007199254740992\]"),
        "memo index 2**26 (1 GiB)": (dumps(_with(base, ("meta", "scene"), memo_put(2 ** 26))), error, "meta scene is None"),
    }
