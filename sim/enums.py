"""Genesis's option enums (`gs.constraint_solver`, `gs.integrator`), with Genesis's member names."""

from enum import IntEnum


class constraint_solver(IntEnum):  # noqa: N801  (Genesis's name)
    CG = 0
    Newton = 1


class integrator(IntEnum):  # noqa: N801  (Genesis's name)
    Euler = 0
    implicitfast = 1
    approximate_implicitfast = 2
