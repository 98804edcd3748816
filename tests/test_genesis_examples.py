"""examples/genesis/ run for a few steps at tiny sizes, all in one fresh process (one Taichi
runtime, so the kernels compile once), each as a Genesis user would call it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUNS = """
import sys, runpy, tempfile, os
sys.path.insert(0, {folder!r})
video = os.path.join(tempfile.mkdtemp(), "hello.mp4")
runpy.run_path({folder!r} + "/hello_world.py", run_name="x")["main"](steps=3, video=video)
assert os.path.getsize(video) > 0
runpy.run_path({folder!r} + "/control_franka.py", run_name="x")["main"](steps=10)
runpy.run_path({folder!r} + "/parallel_envs.py", run_name="x")["main"](n_envs=3, steps=3)
runpy.run_path({folder!r} + "/ik_batched.py", run_name="x")["main"](n_envs=2, steps=3)
runpy.run_path({folder!r} + "/sph_liquid.py", run_name="x")["main"](steps=2, particle_size=0.05)
runpy.run_path({folder!r} + "/mpm_objects.py", run_name="x")["main"](steps=2, grid_density=16)
runpy.run_path({folder!r} + "/cloth.py", run_name="x")["main"](steps=2, res=5)
print("ALL EXAMPLES RAN")
"""


def test_genesis_examples_run():
    code = RUNS.format(folder=str(ROOT / "examples" / "genesis"))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=900,
                            env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ALL EXAMPLES RAN" in result.stdout
    assert "hand-target distance" in result.stdout and "lowest cloth point" in result.stdout
