"""The scene's sensors: added before build, updated after every step, read as torch tensors.

Raw readings are state fields of the scene ("Sensors.imu", "Sensors.contact",
"Sensors.contact_force"), each sensor keeping its last `depth` steps of readings, newest first
(depth covers its kind's longest delay and history): reset(state) and checkpoints restore them
with everything else, a reset to the build-time state gives zeros (Genesis's reading before the
first step and after a reset), and continuing from a restored state reads exactly what the
original run read.
read() applies the deterministic part of Genesis's pipeline in torch: the IMU's cross-axis
coupling, then bias and resolution (read_ground_truth() skips those two), then the Contact
threshold or the ContactForce dead band and saturation.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
import taichi as ti
import torch

from sim import runtime
from sim.envs_idx import normalize_envs_idx
from sim.field_access import gather
from sim.sensors import kernels
from sim.sensors.options import IMU, Contact, ContactForce, RefusedSensor, SensorOptions
from sim.solvers.base import FLOAT, FieldSpec
from sim.utils.geom import xyz_to_quat
from sim.validate import require_built

logger = logging.getLogger("sim")
FIELD_OF = {IMU: "imu", Contact: "contact", ContactForce: "contact_force"}
ELEMENT = {IMU: (9,), Contact: (), ContactForce: (3,)}


class IMUReturnType(NamedTuple):
    lin_acc: torch.Tensor
    ang_vel: torch.Tensor
    mag: torch.Tensor


class Sensor:
    """One sensor (scene.add_sensor's return): read(envs_idx=None), read_ground_truth(envs_idx=None)."""

    def __init__(self, manager: SensorManager, options: SensorOptions, link, row: int, delay_steps: int):
        self._manager, self._options, self._link, self._row = manager, options, link, row
        self._delay_steps = delay_steps

    def read(self, envs_idx=None):
        """The measured reading (bias and resolution applied): a tensor, or the IMU's (lin_acc,
        ang_vel, mag); env axis first on a batched scene."""
        return self._format(self._manager.measured(self, envs_idx))

    def read_ground_truth(self, envs_idx=None):
        """The reading without bias and resolution."""
        return self._format(self._manager.measured(self, envs_idx, ground_truth=True))

    def _format(self, flat: torch.Tensor):
        parts, start = [], 0
        for size in self._options.READ_SIZES:
            parts.append(flat[..., start:start + size])
            start += size
        return IMUReturnType(*parts) if isinstance(self._options, IMU) else parts[0]

    def __repr__(self):
        return f"<{type(self._options).__name__} sensor on {self._link!r}>"


class SensorManager:
    def __init__(self, scene):
        self.scene = scene
        self.sensors: list[Sensor] = []

    # ------------------------------------------------------------------ before build
    def add(self, options) -> Sensor:
        """Validate everything, then add: bad options change nothing."""
        if self.scene.is_built:
            raise RuntimeError("scene.add_sensor must be called before scene.build()")
        if isinstance(options, RefusedSensor):
            raise NotImplementedError(f"gs.sensors.{type(options).__name__} is not supported: {options.why}")
        if type(options) not in FIELD_OF:
            raise TypeError(f"scene.add_sensor takes gs.sensors.IMU, Contact or ContactForce options, "
                            f"got {type(options).__name__}")
        name = type(options).__name__
        bad = options.unsupported()
        if bad:
            raise NotImplementedError(f"gs.sensors.{name}({', '.join(bad)}) is not supported: readings here are "
                                      f"deterministic (no noise, random walk or jitter)")
        link = self._link(options, name)
        n_links = self.scene.sim.rigid_solver.n_links
        for idx in getattr(options, "filter_link_idx", ()):
            if not 0 <= idx < n_links:
                raise ValueError(f"gs.sensors.{name}: filter_link_idx {idx} is not a rigid link index "
                                 f"(the scene has {n_links}; ground planes are no link here)")
        delay_steps = round(options.delay / self.scene.dt)
        if abs(delay_steps * self.scene.dt - options.delay) > 1e-9:
            logger.warning("gs.sensors.%s: delay %g is not a multiple of the step %g; it reads %d steps late",
                           name, options.delay, self.scene.dt, delay_steps)
        row = sum(type(s._options) is type(options) for s in self.sensors)
        sensor = Sensor(self, options, link, row, delay_steps)
        self.sensors.append(sensor)
        return sensor

    def _link(self, options, name):
        from sim.solvers.rigid.entity import RigidEntity

        entities = self.scene.entities
        if not 0 <= options.entity_idx < len(entities):
            raise ValueError(f"gs.sensors.{name}: entity_idx {options.entity_idx} names no entity of the scene "
                             f"(it has {len(entities)}); pass entity_idx=entity.idx of the entity it is attached to")
        entity = entities[options.entity_idx]
        if not isinstance(entity, RigidEntity):
            raise TypeError(f"gs.sensors.{name}: entity {options.entity_idx} is a {type(entity).__name__}, "
                            f"not a rigid entity")
        if options.link_idx_local >= entity.n_links:
            raise ValueError(f"gs.sensors.{name}: link_idx_local {options.link_idx_local} is out of range for "
                             f"entity {options.entity_idx} ({entity.n_links} links)")
        return entity.links[options.link_idx_local]

    def _of(self, cls) -> list[Sensor]:
        return [s for s in self.sensors if type(s._options) is cls]

    def _depth(self, cls) -> int:
        """Steps of readings kept per sensor of kind `cls`."""
        return max([1] + [max(s._delay_steps + 1, s._options.history_length) for s in self._of(cls)])

    def state_specs(self) -> dict:
        """The raw readings' state fields, "Sensors.<kind>" -> FieldSpec (none without sensors): the
        readings of sensor i, newest first, in columns i * depth ... (i + 1) * depth - 1."""
        return {f"Sensors.{FIELD_OF[cls]}": FieldSpec(FIELD_OF[cls], (len(self._of(cls)) * self._depth(cls),), FLOAT,
                                                      ELEMENT[cls]) for cls in FIELD_OF if self._of(cls)}

    def describe(self) -> list:
        return [s._options.describe() for s in self.sensors]

    # ------------------------------------------------------------------ build and step
    def build(self, fields: dict) -> None:
        if not self.sensors:
            return
        solver = self.scene.sim.rigid_solver
        d, ti_float = solver.data, runtime.config().ti_float
        self._ring = {cls: fields[f"Sensors.{FIELD_OF[cls]}"] for cls in FIELD_OF if self._of(cls)}
        self._out = {cls: (ti.Vector.field(ELEMENT[cls][0], ti_float, shape=(d.batch, len(self._of(cls))))
                           if ELEMENT[cls] else ti.field(ti_float, shape=(d.batch, len(self._of(cls)))))
                     for cls in self._ring}
        imus = self._of(IMU)
        if imus:
            o = [s._options for s in imus]
            quats = np.asarray(xyz_to_quat(np.stack([x.euler_offset for x in o]), rpy=True, degrees=True))
            self._imu = {"body": _const(ti.i32, [s._link.idx + 1 for s in imus]),
                         "offset_pos": _const(ti_float, [x.pos_offset for x in o]),
                         "offset_quat": _const(ti_float, quats),
                         "magnetic": _const(ti_float, [x.magnetic_field for x in o])}
            self._vel = ti.field(ti_float, shape=(d.batch, max(d.nv, 1)))
            self._point = ti.Vector.field(3, ti_float, shape=(d.batch, len(imus)))
            self._frame = ti.Vector.field(4, ti_float, shape=(d.batch, len(imus)))
            solver.after_forward.append(self._snapshot)
        self._contact = {}
        for cls in (Contact, ContactForce):
            sensors = self._of(cls)
            if sensors:
                width = max([1] + [len(s._options.filter_link_idx) for s in sensors])
                table = np.full((len(sensors), width), -1, dtype=np.int32)
                for i, s in enumerate(sensors):
                    table[i, :len(s._options.filter_link_idx)] = np.asarray(s._options.filter_link_idx) + 1
                self._contact[cls] = (_const(ti.i32, [s._link.idx + 1 for s in sensors]), _const(ti.i32, table))
        cfg = runtime.config()
        tc = lambda a: torch.as_tensor(np.asarray(a), dtype=cfg.tc_float, device=cfg.device)  # noqa: E731
        self._consts = {}
        for cls in self._out:
            opts = [s._options for s in self._of(cls)]
            bias, res = zip(*(o.imperfections() for o in opts))
            c = self._consts[cls] = {"bias": tc(bias), "resolution": tc(res)}
            if cls is IMU:
                c["coupling"] = tc([[o.acc_cross_axis_coupling, o.gyro_cross_axis_coupling, o.mag_cross_axis_coupling]
                                    for o in opts])
            elif cls is Contact:
                c["threshold"] = tc([[o.threshold] for o in opts])
            else:
                c["min_force"], c["max_force"] = tc([o.min_force for o in opts]), tc([o.max_force for o in opts])

    def _snapshot(self) -> None:
        i = self._imu
        kernels.snapshot(self.scene.sim.rigid_solver.data, self._vel, i["body"], i["offset_pos"], i["offset_quat"],
                         self._point, self._frame)

    def update(self) -> None:
        """After a scene step: the raw readings of every sensor, one kernel per kind."""
        if not self.sensors:
            return
        d = self.scene.sim.rigid_solver.data
        if IMU in self._out:
            kernels.imu(d, self._vel, self._imu["body"], self._imu["magnetic"], self._point, self._frame,
                        self._out[IMU])
        if Contact in self._out:
            kernels.contacts(d, *self._contact[Contact], self._out[Contact])
        if ContactForce in self._out:
            kernels.contact_forces(d, *self._contact[ContactForce], self._out[ContactForce])
        for cls, ring in self._ring.items():
            kernels.push(self._out[cls], ring, self._depth(cls))

    # ------------------------------------------------------------------ reads
    def measured(self, sensor: Sensor, envs_idx, ground_truth: bool = False) -> torch.Tensor:
        """The sensor's flat reading, (len(envs), [history_length,] cache_size), no env axis unbatched.
        Genesis's timing: read() is delay steps late, read_ground_truth() is not; a history holds
        the last history_length readings, newest first (not delayed, as in Genesis)."""
        history = sensor._options.history_length
        slots = list(range(history)) if history else [0 if ground_truth else sensor._delay_steps]
        out = self._read(type(sensor._options), [sensor._row], [slots], envs_idx, ground_truth, "sensor.read()")
        out = out[:, 0] if history else out[:, 0, 0]
        return out[0] if self.scene.n_envs == 0 else out

    def _read(self, cls, rows, slots, envs_idx, ground_truth, what) -> torch.Tensor:
        """Sensor rows[i]'s readings slots[i] steps old: (len(envs), len(rows), len(slots[i]), cache_size)."""
        require_built(self.scene, what)
        n_envs = self.scene.n_envs
        envs = np.arange(max(n_envs, 1), dtype=np.int32) if envs_idx is None else normalize_envs_idx(envs_idx, n_envs)
        depth = self._depth(cls)
        cols = [r * depth + k for r, ks in zip(rows, slots) for k in ks]
        raw = gather(self._ring[cls], envs, cols).to(runtime.config().tc_float)
        raw = raw.reshape(len(envs), len(rows), len(slots[0]), -1)
        c = {k: v[rows][:, None] for k, v in self._consts[cls].items()}
        if cls is IMU:
            raw = (c["coupling"] @ raw.reshape(*raw.shape[:3], 3, 3, 1)).reshape(raw.shape)
        if not ground_truth:
            raw = raw + c["bias"]
            res = c["resolution"].expand_as(raw)
            quantised = torch.round(raw / res.clamp(min=1e-30)) * res
            raw = torch.where(res > 0, quantised, raw)
        if cls is Contact:
            raw = raw > c["threshold"]
        elif cls is ContactForce:
            raw = raw.clamp(min=-c["max_force"], max=c["max_force"])
            raw = raw.masked_fill(raw.abs() < c["min_force"], 0.0)
        return raw

    def read_all(self, envs_idx=None) -> dict:
        """scene.read_sensors: per kind present, keyed by gs.sensors.types.<Name>, the readings of its
        sensors side by side, ordered by entity_idx: (n_envs, total size), or (n_envs, H, total size)
        when a sensor of the kind keeps a history (the last H readings of every sensor of the kind,
        as Genesis); no env axis unbatched."""
        from sim.sensors import types

        require_built(self.scene, "scene.read_sensors()")
        out = {}
        for cls in FIELD_OF:
            sensors = self._of(cls)
            if sensors:
                order = sorted(range(len(sensors)), key=lambda r: sensors[r]._options.entity_idx)
                history = max(s._options.history_length for s in sensors)
                slots = [list(range(history)) if history else [sensors[r]._delay_steps] for r in order]
                values = self._read(cls, order, slots, envs_idx, False, "scene.read_sensors()").transpose(1, 2)
                values = values.reshape(values.shape[0], *([history] if history else []), -1)
                out[getattr(types, cls.__name__)] = values[0] if self.scene.n_envs == 0 else values
        return out


def _const(dtype, rows):
    """A small constant field: int32 of the array's shape, or float vectors (one per row)."""
    arr = np.asarray(rows)
    if dtype == ti.i32:
        field, arr = ti.field(ti.i32, shape=arr.shape), arr.astype(np.int32)
    else:
        field, arr = ti.Vector.field(arr.shape[1], dtype, shape=arr.shape[0]), arr.astype(runtime.config().np_float)
    field.from_numpy(arr)
    return field
