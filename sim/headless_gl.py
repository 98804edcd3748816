"""Choose MuJoCo's headless OpenGL backend before anything imports mujoco.

MuJoCo picks its GL platform when it is first imported (MUJOCO_GL). Cameras render offscreen,
so on Linux without a display, unless the user chose a backend, EGL is used when libEGL is
installed (it needs no X server). Imported first by sim/__init__.py.
"""

import ctypes.util
import os
import sys

if (sys.platform.startswith("linux") and "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY")
        and ctypes.util.find_library("EGL")):
    os.environ["MUJOCO_GL"] = "egl"
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
