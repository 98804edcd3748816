"""Progress bars (tqdm) for what takes a while: building shards, big checkpoints, recoveries.

Checkpoint saves and loads count bytes (writing, reading; gathering the state counts shards).
A bar shows only on a terminal (tqdm's `disable=None`), only once its operation has run for
DELAY_S (so a fast save shows nothing), and never when GENESIS_DIST_PROGRESS=0 or `show=False`.
It writes to stderr, so a program's own output stays clean when piped.
"""

from __future__ import annotations

import os

from tqdm.auto import tqdm

DELAY_S = 1.0
ENV_VAR = "GENESIS_DIST_PROGRESS"
BYTES = {"unit": "B", "unit_scale": True, "unit_divisor": 1024}  # a bar counting bytes: KiB, MiB, GiB


def enabled(show: bool | None = None) -> bool | None:
    """True: always; False: never; None: on a terminal (tqdm decides). `show` wins over the environment variable."""
    if show is not None:
        return bool(show)
    return False if os.environ.get(ENV_VAR, "1").strip().lower() in ("0", "false", "no", "off") else None


def bar(total: int | float | None, desc: str, unit: str = "it", show: bool | None = None, **kwargs) -> tqdm:
    """A tqdm bar (use `with` or call .close()); `unit_scale` etc. pass through. total=None: a counter."""
    flag = enabled(show)
    kwargs = {"delay": DELAY_S, "leave": False, "dynamic_ncols": True, **kwargs}
    return tqdm(total=total, desc=desc, unit=unit, disable=None if flag is None else not flag, **kwargs)
