"""The interface every solver implements, and the registry that lets the core stay solver-agnostic.

A solver declares its state as `FieldSpec`s; the scene allocates those Taichi fields, hands
them to `Solver.build`, and alone implements get_state / reset / checkpoint for every solver.
Registering a solver also publishes its options class (`gs.options.<Name>`) and its
materials namespace (`gs.materials.<Name>`) at run time, so a solver added from outside `sim`
touches no core file. The built-in solvers are also named in sim/options.py and
sim/materials.py (one import line each), so that editors can follow those names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any, ClassVar

import numpy as np

FLOAT = "float"  # FieldSpec dtype placeholder: the scene's precision (gs.init precision=...)


@dataclass(frozen=True)
class FieldSpec:
    """One state array of a solver.

    shape: per-environment shape, without the env axis and without element dims.
    element: () for a scalar field, (n,) for ti.Vector.field, (n, m) for ti.Matrix.field.
    dtype: FLOAT (scene precision), np.float32, np.float64 or np.int32.
    reset_keeps: a model parameter the user sets per env (domain randomisation): a state carries
    it, but a reset without a state keeps its current value (as Genesis keeps them).
    The numpy array of the field is (n_envs, *shape, *element).
    """

    name: str
    shape: tuple[int, ...]
    dtype: Any = FLOAT
    element: tuple[int, ...] = ()
    reset_keeps: bool = False

    def __post_init__(self):
        if self.dtype != FLOAT and np.dtype(self.dtype) not in (np.float32, np.float64, np.int32):
            raise ValueError(f"state field {self.name}: dtype {self.dtype} is not float32/float64/int32")
        if len(self.element) > 2:
            raise ValueError(f"state field {self.name}: element dims {self.element} are more than 2")

    def np_dtype(self, float_dtype: np.dtype) -> np.dtype:
        return np.dtype(float_dtype if self.dtype == FLOAT else self.dtype)

    @property
    def per_env_shape(self) -> tuple[int, ...]:
        return tuple(self.shape) + tuple(self.element)


class Solver(ABC):
    """Base class of a solver. Subclasses set the ClassVars and implement the abstract methods."""

    name: ClassVar[str]                 # prefix of its state keys, e.g. "MPMSolver"
    options_cls: ClassVar[type]         # dataclass; published as gs.options.<options_cls.__name__>
    options_kwarg: ClassVar[str]        # Scene keyword taking the options, e.g. "mpm_options"
    materials: ClassVar[dict[str, type]]  # gs.materials path -> class: {"MPM.Elastic": ..., } or {"Rigid": ...}

    def __init__(self, scene, options, sim_options):
        self.scene = scene
        self.options = options
        self.sim_options = sim_options
        self.entities: list = []

    @property
    def is_active(self) -> bool:
        return bool(self.entities)

    @abstractmethod
    def add_entity(self, morph, material):
        """Validate morph + material, remember the entity and return it. Raise before changing anything."""

    @abstractmethod
    def state_specs(self) -> list[FieldSpec]:
        """The state fields, known once all entities are added."""

    @abstractmethod
    def build(self, n_envs: int, batch: int, state: dict) -> None:
        """Allocate working fields for `batch` = max(n_envs, 1) rows and write the initial
        state into `state` (FieldSpec name -> Taichi field of shape (batch, *shape))."""

    @abstractmethod
    def step(self) -> None:
        """Advance every environment by one scene step (sim_options.dt)."""

    def describe(self) -> dict:
        """A JSON-able description of options and entities (each with .morph and .material),
        from which the checkpoint fingerprint is made."""
        return {"options": to_plain(self.options),
                "entities": [{"morph": to_plain(e.morph), "material": to_plain(e.material)}
                             for e in self.entities]}


def to_plain(obj):
    """Dataclasses, tuples, enums (by name) and numpy scalars as plain JSON-able Python values."""
    if isinstance(obj, Enum):
        return obj.name
    if is_dataclass(obj) and not isinstance(obj, type):
        return {"type": type(obj).__name__, **{k: to_plain(v) for k, v in asdict(obj).items()}}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


_registry: dict[str, type[Solver]] = {}
_default_material: type | None = None


def register_solver(cls: type[Solver], default_material: type | None = None) -> type[Solver]:
    """Publish a solver. `default_material` is used by add_entity when none is given."""
    global _default_material
    _registry[cls.name] = cls
    for material in cls.materials.values():
        material.solver_name = cls.name
    if default_material is not None:
        _default_material = default_material
    return cls


def registered_solvers() -> dict[str, type[Solver]]:
    return dict(_registry)


def default_material():
    if _default_material is None:
        raise ValueError("add_entity needs a material: no solver registers a default one")
    return _default_material()
