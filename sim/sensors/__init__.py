"""`gs.sensors`: Genesis's sensors on rigid links (IMU, Contact, ContactForce), added with
`scene.add_sensor(gs.sensors.IMU(entity_idx=..., link_idx_local=...))` before build and read with
`sensor.read(envs_idx=None)` or `scene.read_sensors()`. See sim.sensors.options for what is
honoured and refused, sim.sensors.kernels for what the readings are."""

from sim.sensors.manager import IMUReturnType, Sensor, SensorManager
from sim.sensors.options import IMU, REFUSED_CLASSES, Contact, ContactForce, SensorOptions


class _SensorTypes:
    """Genesis's `gs.sensors.types.<Name>`: an int tag per sensor options class, handed out in the
    order of first use; the keys of scene.read_sensors()."""

    def __init__(self):
        self._ids: dict[str, int] = {}

    def __getattr__(self, name: str) -> int:
        if name.startswith("_") or name not in globals() or not isinstance(globals()[name], type):
            raise AttributeError(f"gs.sensors.types has no {name!r}")
        return self._ids.setdefault(name, len(self._ids))


types = _SensorTypes()
globals().update(REFUSED_CLASSES)

__all__ = ["IMU", "Contact", "ContactForce", "SensorOptions", "Sensor", "SensorManager", "IMUReturnType", "types",
           *REFUSED_CLASSES]
