"""Unpickling that a file cannot steer: plain data and plain numeric arrays, nothing else.

`load(file)` reads what `pickle.dump` writes for dicts, lists, str, int, float, bool, None and
numpy arrays and scalars of a bool, int, uint, float or complex dtype, and refuses the rest.

Why not `pickle.Unpickler` admitting numpy's own globals: numpy applies the dtype state a
pickle gives it, flags included, so a file could forge an object dtype that says "no objects"
and have its bytes taken for pointers (a crash, or worse). Here `find_class` hands out
stand-ins for numpy's globals that accept only the arguments and state numpy itself writes for
a plain dtype, and rebuild every array from (dtype string, shape, bytes): no numpy object is
ever on the unpickler's stack, and none a file describes is built by numpy's own unpickling.

The pure-Python unpickler is used (about 1 us an opcode; a checkpoint has a few hundred): the
C one sizes its memo from an index in the file (11 bytes make it touch 2 GiB), and here every
length the file declares is checked against the bytes left in it before anything is allocated.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import struct

import numpy as np

MAX_DEPTH = 32             # containers inside containers (a checkpoint's meta nests 8 deep)
MAX_NODES = 1_000_000      # values visited, shared ones counted each time they are reached
MAX_STR = 4096             # characters in any string (PATH_MAX)
MAX_INT = 2 ** 64          # |int| anywhere in the data
MAX_NDIM = 32
MAX_DIM = 2 ** 31 - 1      # one axis of an array: Taichi indexes fields with int32


class Refused(ValueError):
    """The pickle is malformed or holds something that is not plain data."""


class Unsafe(Refused):
    """The pickle asks for a global, a dtype or a numpy state that is not plain data."""


def brief(x, nested: bool = False) -> str:
    """A short description of an untrusted value for an error message (no deep or huge repr)."""
    if type(x) in (tuple, list) and len(x) <= 10 and not nested:
        items = ", ".join(brief(v, True) for v in x) + ("," if len(x) == 1 and type(x) is tuple else "")
        return f"({items})" if type(x) is tuple else f"[{items}]"
    if x is None or type(x) in (bool, float):
        return repr(x)
    if type(x) is int:
        return repr(x) if abs(x) < 10 ** 30 else f"a {x.bit_length()}-bit int"
    if type(x) in (str, bytes, bytearray):
        return repr(x[:60]) + ("..." if len(x) > 60 else "")
    if isinstance(x, (_StandIn, _DType, _Array)):
        return repr(x)
    return f"a {type(x).__name__}"


_DTYPE_STRING = re.compile(r"[<>|=]?[biufc][0-9]{1,2}")


def plain_dtype(spec) -> np.dtype:
    """The dtype a string such as '<f4', 'i8' or 'b1' names; anything else is refused."""
    if type(spec) is not str or not _DTYPE_STRING.fullmatch(spec):
        raise Unsafe(f"dtype {brief(spec)} is not a plain bool, int, uint, float or complex dtype")
    try:
        dtype = np.dtype(spec)
    except TypeError:
        raise Unsafe(f"dtype {spec!r} is not a numpy dtype") from None
    return dtype


class _StandIn:
    """What find_class returns for an admitted global: checks its arguments, then builds.
    Its __setstate__ refuses, so a pickle cannot change it (BUILD sets a function's attributes)."""

    __slots__ = ("name", "_make")

    def __init__(self, name, make):
        self.name, self._make = name, make

    def __call__(self, *args):
        return self._make(*args)

    def __setstate__(self, state):
        raise Unsafe(f"the pickle tries to change {self.name}")

    def __repr__(self):
        return self.name


class _DType:
    """numpy.dtype(spec, align, copy) as numpy pickles a dtype; BUILD may give only the state
    numpy writes for a plain dtype, and sets nothing but its byte order."""

    __slots__ = ("dtype",)

    def __init__(self, spec, align=False, copy=True):
        if align is not False or copy is not True:
            raise Unsafe(f"numpy.dtype({brief(spec)}, {brief(align)}, {brief(copy)}): numpy pickles "
                         f"a dtype with align=False, copy=True")
        self.dtype = plain_dtype(spec)

    def __setstate__(self, state):
        order = state[1] if type(state) is tuple and len(state) == 8 else None
        one_byte = self.dtype.itemsize == 1
        if (order not in ("<", ">", "|") or (order == "|") != one_byte
                or state != (3, order, None, None, None, -1, -1, 0)):
            raise Unsafe(f"dtype {self.dtype.str} comes with the state {brief(state)}; a plain dtype's is (3, byte order, None, None, None, -1, -1, 0): no flags, "
                         f"fields or sizes of its own")
        if not one_byte:
            self.dtype = self.dtype.newbyteorder(order)

    def __repr__(self):
        return f"numpy.dtype({self.dtype.str!r})"


class _Array:
    """An array being unpickled: the tree check replaces it by the ndarray it holds."""

    __slots__ = ("array",)

    def __init__(self, array=None):
        self.array = array

    def __setstate__(self, state):
        """ndarray.__setstate__ as numpy pickles it: (1, shape, dtype, is_fortran, raw bytes)."""
        if self.array is not None:
            raise Unsafe("the pickle sets an array's state twice")
        if type(state) is not tuple or len(state) != 5 or state[0] != 1 or type(state[3]) is not bool:
            raise Refused(f"array state {brief(state)} is not (1, shape, dtype, is_fortran, bytes)")
        _, shape, dtype, fortran, raw = state
        self.array = _rebuild(raw, dtype, shape, "F" if fortran else "C")

    def __repr__(self):
        return "numpy.ndarray"


def _rebuild(raw, dtype, shape, order, axis_order=None) -> np.ndarray:
    """A new, writable array from its bytes, after checking that they are exactly what
    `shape` and `dtype` need (so its size is bounded by the file's)."""
    if type(dtype) is not _DType:
        raise Unsafe(f"an array's dtype is {brief(dtype)}, not a numpy.dtype")
    if type(raw) not in (bytes, bytearray):
        raise Unsafe(f"an array's data is {brief(raw)}, not bytes (an object array?)")
    if (type(shape) is not tuple or len(shape) > MAX_NDIM
            or not all(type(d) is int and 0 <= d <= MAX_DIM for d in shape)):
        raise Refused(f"array shape {brief(shape)} is not a tuple of at most {MAX_NDIM} sizes in [0, {MAX_DIM}]")
    dt = dtype.dtype
    if math.prod(shape) * dt.itemsize != len(raw):
        raise Refused(f"an array of shape {shape} and dtype {dt.str} needs {math.prod(shape) * dt.itemsize} "
                      f"bytes, the file gives {len(raw)}")
    flat = np.frombuffer(raw, dtype=dt)
    if type(raw) is bytes:
        flat = flat.copy()  # read-only otherwise
    if order == "K" and axis_order is not None:  # numpy >= 2.3: dense but transposed
        if type(axis_order) is not tuple or sorted(axis_order) != list(range(len(shape))):
            raise Refused(f"axis order {brief(axis_order)} is not a permutation of the array's axes")
        return flat.reshape(shape).transpose(axis_order)
    if order not in ("C", "F") or axis_order is not None:
        raise Refused(f"array order {brief(order)} is not 'C' or 'F'")
    return flat.reshape(shape, order=order)


def _frombuffer(buf, dtype, shape, order, axis_order=None):
    return _Array(_rebuild(buf, dtype, shape, order, axis_order))


def _reconstruct(subtype, shape, typecode):
    if subtype is not _NDARRAY or shape != (0,) or typecode != b"b":
        raise Unsafe(f"_reconstruct({brief(subtype)}, {brief(shape)}, {brief(typecode)}): numpy "
                     f"pickles an array as _reconstruct(numpy.ndarray, (0,), b'b')")
    return _Array()


def _scalar(dtype, data):
    """A numpy scalar comes back as the Python int, float, bool or complex it holds."""
    if type(dtype) is not _DType or type(data) is not bytes or len(data) != dtype.dtype.itemsize:
        raise Unsafe(f"numpy scalar of {brief(dtype)} from {brief(data)}: not one plain value's bytes")
    return np.frombuffer(data, dtype=dtype.dtype)[0].item()


def _encode(text, encoding):
    """_codecs.encode(str, 'latin1'): how pickle protocols 0-2 write bytes."""
    if type(text) is not str or encoding != "latin1":
        raise Unsafe(f"_codecs.encode({brief(text)}, {brief(encoding)}): only latin1 text is bytes")
    return text.encode("latin1")


def _empty_bytes(*args):
    """bytes(): how pickle protocols 0-2 write b'' (an empty array's data)."""
    if args:
        raise Unsafe(f"bytes{brief(args)}: only bytes() is admitted")
    return b""


def _refuse_ndarray(*args):
    raise Unsafe("the pickle calls numpy.ndarray itself; numpy pickles arrays through _reconstruct")


_NDARRAY = _StandIn("numpy.ndarray", _refuse_ndarray)
_GLOBALS = {("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): _StandIn("numpy.dtype", _DType),
            ("collections", "OrderedDict"): _StandIn("collections.OrderedDict", dict),
            ("_codecs", "encode"): _StandIn("_codecs.encode", _encode),
            ("__builtin__", "bytes"): _StandIn("bytes", _empty_bytes),
            ("builtins", "bytes"): _StandIn("bytes", _empty_bytes)}
for _core in ("numpy.core", "numpy._core"):  # numpy 1.x, 2.x
    _GLOBALS[(_core + ".multiarray", "_reconstruct")] = _StandIn("numpy.ndarray", _reconstruct)
    _GLOBALS[(_core + ".multiarray", "scalar")] = _StandIn("numpy scalar", _scalar)
    _GLOBALS[(_core + ".numeric", "_frombuffer")] = _StandIn("numpy.ndarray", _frombuffer)


class _BoundedFile:
    """The file as the unpickler sees it: a read past its end fails before anything is allocated."""

    def __init__(self, f, size: int):
        self._f, self.left = f, size

    def read(self, n):
        if n > self.left:
            raise Refused(f"truncated: the pickle wants {n} bytes where {self.left} are left")
        data = self._f.read(n)
        self.left -= len(data)
        return data

    def readinto(self, buf):
        if len(buf) > self.left:
            raise Refused(f"truncated: the pickle wants {len(buf)} bytes where {self.left} are left")
        n = self._f.readinto(buf)
        self.left -= n
        return n

    def readline(self):
        data = self._f.readline(self.left)
        self.left -= len(data)
        return data


class _Unpickler(pickle._Unpickler):  # the pure-Python one: see the module docstring
    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, f: _BoundedFile, size: int):
        super().__init__(f)
        self._file, self._size = f, size

    def find_class(self, module, name):
        try:
            return _GLOBALS[(module, name)]
        except KeyError:
            raise Unsafe(f"the pickle asks for {brief(module)[1:-1]}.{brief(name)[1:-1]}, and only numpy "
                         f"arrays of plain dtypes and plain Python data are read") from None

    def _load_bytearray8(self):
        (n,) = struct.unpack("<Q", self.read(8))
        if n > self._size:  # the stock one allocates (and zeroes) n bytes before reading them
            raise Refused(f"the pickle declares {n} bytes of data in a file of {self._size}")
        data = bytearray(n)
        frame = self._unframer.current_frame
        got = frame.readinto(data) if frame else 0
        if got == 0 and n:  # an array's bytes follow the frames: read them straight into place
            self._unframer.current_frame = None
            got = self._file.readinto(data)
        if got != n:
            raise Refused(f"truncated: an array's {n} bytes end after {got}")
        self.append(data)

    dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8


class _Tree:
    """Checks the unpickled tree and replaces each _Array by its ndarray. Arrays are accepted
    only as the values of the dict at root[arrays_key]."""

    def __init__(self, arrays_key: str):
        self.nodes = 0
        self.arrays_key = arrays_key

    def check(self, x, depth: int, where: str, role: str | None = None):
        """role: "holder" for root[arrays_key], "array" for a value in it, None elsewhere."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise Refused(f"the pickle holds more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise Refused(f"{where} is nested more than {MAX_DEPTH} levels deep")
        kind = type(x)
        if x is None or kind in (bool, float):
            return x
        if kind is int:
            if abs(x) > MAX_INT:
                raise Refused(f"{where} is {brief(x)}, out of range")
            return x
        if kind is str:
            if len(x) > MAX_STR:
                raise Refused(f"{where} is a string of {len(x)} characters, more than {MAX_STR}")
            return x
        if kind in (_Array, np.ndarray) and role != "array":
            raise Refused(f"{where} is a numpy array; arrays belong in the dict at {self.arrays_key!r}")
        if kind is _Array:
            if x.array is None:
                raise Refused(f"{where} is an array without its data")
            return x.array
        if kind is np.ndarray:  # only when checking what write() is given: the unpickler makes none
            try:
                plain = x.dtype == plain_dtype(x.dtype.str) and x.dtype.metadata is None
            except Unsafe:
                plain = False
            if not plain:
                raise Unsafe(f"{where} has the dtype {x.dtype}, not a plain bool, int, uint, float or complex one")
            return x
        if kind is list:
            return [self.check(v, depth + 1, f"{where}[{i}]" if depth < 8 else where) for i, v in enumerate(x)]
        if kind is dict:
            out = {}
            for k, v in x.items():
                if type(k) is not str or len(k) > MAX_STR:
                    raise Refused(f"{where} has the key {brief(k)}; keys are strings")
                child = "array" if role == "holder" else "holder" if depth == 0 and k == self.arrays_key else None
                out[k] = self.check(v, depth + 1, f"{where}[{k!r}]" if depth < 8 else where, child)
            return out
        raise Refused(f"{where} is {brief(x)}, not plain data (dict, list, str, int, float, bool, "
                      f"None or a numpy array)")


def load(f, what: str, arrays_key: str):
    """Unpickle an open binary file; plain data comes back, with ndarrays only as the values of
    the dict at root[arrays_key], or Refused / Unsafe (whatever is wrong with the file) is raised.
    `what` names the data in messages."""
    size = os.fstat(f.fileno()).st_size - f.tell()
    try:
        obj = _Unpickler(_BoundedFile(f, size), size).load()
    except Refused:
        raise
    except Exception as e:  # anything the file makes the stock code raise
        raise Refused(f"truncated or corrupt pickle ({type(e).__name__}: {str(e)[:200]})") from None
    return check_tree(obj, what, arrays_key)


def check_tree(obj, what: str, arrays_key: str):
    """`obj` with every container and value checked, as load() returns it."""
    return _Tree(arrays_key).check(obj, 0, what)
