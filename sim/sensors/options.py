"""Genesis 1.4.5's sensor options (`gs.sensors.IMU`, `Contact`, `ContactForce`), with its argument
names and defaults, and the Genesis sensor classes this simulator refuses.

Options are checked for type and shape when constructed (an unknown keyword raises TypeError
naming it). What a reading cannot honour here is refused by name at `scene.add_sensor`:
random imperfections (noise, random_walk, jitter). Honoured: delay (whole steps, as Genesis
rounds it), history_length, the link, pos_offset / euler_offset (degrees), bias, resolution, the IMU's
cross-axis coupling and magnetic field, the contact filters, threshold, min_force / max_force.
draw_debug and the debug_* colours and scales are viewer settings, accepted with no effect.
"""

from __future__ import annotations

import math

import numpy as np

_BASE = {"history_length": 0, "delay": 0.0, "jitter": 0.0, "draw_debug": False, "entity_idx": -1}
_LINK = {"link_idx_local": 0, "pos_offset": (0.0, 0.0, 0.0), "euler_offset": (0.0, 0.0, 0.0)}
_SIMPLE = {"resolution": 0.0, "bias": 0.0, "noise": 0.0, "random_walk": 0.0}
_RANDOM = ("noise", "random_walk", "acc_noise", "acc_random_walk", "gyro_noise", "gyro_random_walk",
           "mag_noise", "mag_random_walk")


class SensorOptions:
    """Base of the supported sensors' options: keyword arguments only, every one named in FIELDS."""

    FIELDS: dict = {}
    READ_SIZES: tuple = ()   # the read() tensors' sizes (IMU: lin_acc, ang_vel, mag)

    def __init__(self, **kwargs):
        name = type(self).__name__
        unknown = sorted(set(kwargs) - set(self.FIELDS))
        if unknown:
            raise TypeError(f"gs.sensors.{name} got unknown option(s) {unknown}; its options are {sorted(self.FIELDS)}")
        for key, default in self.FIELDS.items():
            setattr(self, key, kwargs.get(key, default))
        for key in ("history_length", "entity_idx", "link_idx_local"):
            value = getattr(self, key, 0)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"gs.sensors.{name}: {key} must be an int, got {value!r}")
            if value < (-1 if key == "entity_idx" else 0):
                raise ValueError(f"gs.sensors.{name}: {key} must be >= {-1 if key == 'entity_idx' else 0}, got {value}")
        for key in ("delay", "jitter"):
            _finite(name, key, getattr(self, key), nonnegative=True)
        if not isinstance(self.draw_debug, bool):
            raise TypeError(f"gs.sensors.{name}: draw_debug must be True or False, got {self.draw_debug!r}")
        for key in ("pos_offset", "euler_offset"):
            setattr(self, key, _vector(name, key, getattr(self, key), 3, scalar=False))
        for key in _RANDOM + ("resolution", "bias", "acc_resolution", "acc_bias", "gyro_resolution", "gyro_bias",
                              "mag_resolution", "mag_bias", "magnetic_field"):
            if key in self.FIELDS:
                setattr(self, key, _vector(name, key, getattr(self, key), self.block_size(key)))
        for key in ("resolution", "acc_resolution", "gyro_resolution", "mag_resolution"):
            if key in self.FIELDS and np.any(getattr(self, key) < 0):
                raise ValueError(f"gs.sensors.{name}: {key} must be >= 0, got {getattr(self, key).tolist()}")

    @property
    def cache_size(self) -> int:
        return sum(self.READ_SIZES)

    def block_size(self, key: str) -> int:
        """How many reading entries a per-entry option (bias, resolution, ...) covers."""
        return 3 if key.startswith(("acc_", "gyro_", "mag_")) or key == "magnetic_field" else self.cache_size

    def unsupported(self) -> list[str]:
        """The options set to something this simulator cannot honour (named by add_sensor)."""
        bad = [f"jitter={self.jitter!r}"] if self.jitter else []
        bad += [f"{k}={getattr(self, k).tolist()}" for k in _RANDOM if k in self.FIELDS and np.any(getattr(self, k))]
        return bad

    def imperfections(self) -> tuple[np.ndarray, np.ndarray]:
        """(bias, resolution) per reading entry, applied to read() and not to read_ground_truth()."""
        return self.bias, self.resolution

    def describe(self) -> dict:
        def plain(v):
            return v.tolist() if isinstance(v, np.ndarray) else list(v) if isinstance(v, tuple) else v
        return {"type": type(self).__name__, **{k: plain(getattr(self, k)) for k in self.FIELDS}}


class IMU(SensorOptions):
    """Accelerometer (proper acceleration, m/s^2: +g up at rest), gyroscope (rad/s) and magnetometer
    (magnetic_field seen in the sensor frame) of a link, in the sensor frame (the link's frame
    moved by pos_offset and turned by euler_offset, degrees). read() gives (lin_acc, ang_vel, mag)."""

    FIELDS = {**_BASE, **_LINK,
              **{f"{p}_{k}": 0.0 for p in ("acc", "gyro", "mag")
                 for k in ("resolution", "cross_axis_coupling", "noise", "bias", "random_walk")},
              "magnetic_field": (0.0, 0.0, 0.5),
              "debug_acc_color": (1.0, 0.0, 0.0, 0.6), "debug_acc_scale": 0.01,
              "debug_gyro_color": (0.0, 1.0, 0.0, 0.6), "debug_gyro_scale": 0.01,
              "debug_mag_color": (0.0, 0.0, 1.0, 0.6), "debug_mag_scale": 0.5}
    READ_SIZES = (3, 3, 3)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for p in ("acc", "gyro", "mag"):
            key = f"{p}_cross_axis_coupling"
            setattr(self, key, coupling_matrix(getattr(self, key), f"gs.sensors.IMU: {key}"))

    def imperfections(self):
        return (np.concatenate([self.acc_bias, self.gyro_bias, self.mag_bias]),
                np.concatenate([self.acc_resolution, self.gyro_resolution, self.mag_resolution]))


class Contact(SensorOptions):
    """Whether the link touches anything (a contact not filtered out by filter_link_idx, global
    link indices): read() gives a bool per env, shape (1,), True where the contact count (plus
    bias) exceeds threshold."""

    FIELDS = {**_BASE, **_LINK, **_SIMPLE, "filter_link_idx": (), "threshold": 0.0,
              "debug_sphere_radius": 0.05, "debug_color": (1.0, 0.0, 1.0, 0.5)}
    READ_SIZES = (1,)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.filter_link_idx = _indices(self.filter_link_idx, "gs.sensors.Contact: filter_link_idx")
        _finite("Contact", "threshold", self.threshold, nonnegative=True)


class ContactForce(SensorOptions):
    """The net contact force on the link (N), in the link's frame: the sum over its contacts of the
    force the other body exerts on it. min_force zeroes smaller components, max_force clips."""

    FIELDS = {**_BASE, **_LINK, **_SIMPLE, "filter_link_idx": (), "min_force": 0.0, "max_force": math.inf,
              "debug_color": (1.0, 0.0, 1.0, 0.5), "debug_scale": 0.01}
    READ_SIZES = (3,)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.filter_link_idx = _indices(self.filter_link_idx, "gs.sensors.ContactForce: filter_link_idx")
        self.min_force = _vector("ContactForce", "min_force", self.min_force, 3, allow_inf=True)
        self.max_force = _vector("ContactForce", "max_force", self.max_force, 3, allow_inf=True)
        if np.any(self.min_force < 0) or np.any(self.max_force <= self.min_force):
            raise ValueError(f"gs.sensors.ContactForce: need 0 <= min_force < max_force, got {self.min_force.tolist()} "
                             f"and {self.max_force.tolist()}")


class RefusedSensor:
    """A Genesis sensor class that this simulator does not have: it may be constructed (its
    arguments are kept), and scene.add_sensor refuses it by name."""

    why = "it is not implemented in this simulator"

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _refused(name: str, why: str) -> type:
    return type(name, (RefusedSensor,), {"why": why, "__doc__": f"Genesis's gs.sensors.{name}: refused ({why})."})


_RAY = "ray casting against the scene's geometry is not implemented here"
_TACTILE = "tactile sensor models are not implemented here"
REFUSED = {
    "JointTorque": "joint-space effort sensing is not implemented here (get_dofs_control_force / get_dofs_force "
                   "give the controller's and passive forces)",
    "TemperatureGrid": "there is no heat model here", "SurfaceDistanceProbe": _RAY,
    "Raycaster": _RAY, "Lidar": _RAY, "DepthCamera": _RAY + " (scene.add_camera renders depth images)",
    "GridPattern": _RAY, "SphericalPattern": _RAY, "DepthCameraPattern": _RAY,
    "ContactProbe": _TACTILE, "ContactDepthProbe": _TACTILE, "KinematicTaxel": _TACTILE,
    "ElastomerTaxel": _TACTILE, "ProximityTaxel": _TACTILE,
    **{n: "camera sensors are not implemented here; use scene.add_camera(...) and camera.render()"
       for n in ("RasterizerCameraOptions", "RaytracerCameraOptions", "BatchRendererCameraOptions")},
}
REFUSED_CLASSES = {name: _refused(name, why) for name, why in REFUSED.items()}


def coupling_matrix(value, what: str) -> np.ndarray:
    """Genesis's cross-axis coupling: a scalar (every off-diagonal entry), a 3-vector (column j's
    off-diagonal entries) or a 3x3 matrix, with ones on the diagonal unless a matrix is given."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape in ((), (3,)):
        out = np.broadcast_to(arr, (3, 3)).copy()
        np.fill_diagonal(out, 1.0)
    elif arr.shape == (3, 3):
        out = arr.copy()
    else:
        raise ValueError(f"{what} must be a scalar, a 3-vector or a 3x3 matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{what} holds non-finite values")
    return out


def _finite(name, key, value, nonnegative=False):
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not number or not math.isfinite(value):
        raise TypeError(f"gs.sensors.{name}: {key} must be a finite number, got {value!r}")
    if nonnegative and value < 0:
        raise ValueError(f"gs.sensors.{name}: {key} must be >= 0, got {value}")


def _vector(name, key, value, size, scalar=True, allow_inf=False) -> np.ndarray:
    """A scalar (broadcast, where allowed) or `size` numbers, as a float64 array."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"gs.sensors.{name}: {key} must be numbers, got {value!r}") from None
    if arr.ndim == 0 and scalar:
        arr = np.full(size, float(arr))
    if arr.shape != (size,):
        raise ValueError(f"gs.sensors.{name}: {key} must be {'a number or ' if scalar else ''}{size} numbers, "
                         f"got shape {arr.shape}")
    if np.any(np.isnan(arr)) or (not allow_inf and not np.all(np.isfinite(arr))):
        raise ValueError(f"gs.sensors.{name}: {key} holds non-finite values: {arr.tolist()}")
    return arr


def _indices(value, what) -> tuple[int, ...]:
    items = list(value.tolist() if hasattr(value, "tolist") else value) if not isinstance(value, (int, np.integer)) \
        else [value]
    if any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in items):
        raise TypeError(f"{what} must be link indices (ints), got {value!r}")
    return tuple(int(i) for i in items)
