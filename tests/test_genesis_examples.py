"""examples/genesis/ (and the FrankaReach video example) run at tiny sizes, all in one fresh
process (one Taichi runtime, so kernels compile once; one local Ray for the two that train),
each through its whole script path as a Genesis user would call it. The log times each one."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUNS = """
import sys, runpy, tempfile, os, time
import imageio.v2 as imageio, numpy as np
sys.path.insert(0, {folder!r})
def run(path, **kwargs):
    start = time.perf_counter()
    out = runpy.run_path(path, run_name="x")["main"](**kwargs)
    print(f"EXAMPLE {{os.path.basename(path)}}: {{time.perf_counter() - start:.1f}} s", flush=True)
    return out
video = os.path.join(tempfile.mkdtemp(), "hello.mp4")
run({folder!r} + "/hello_world.py", steps=3, video=video)
assert os.path.getsize(video) > 0
run({folder!r} + "/control_franka.py", steps=5)  # 5 steps still pass through every control phase
run({folder!r} + "/parallel_envs.py", n_envs=2, steps=3)
run({folder!r} + "/ik_batched.py", n_envs=2, steps=3)
run({folder!r} + "/sph_liquid.py", steps=2, particle_size=0.05)
run({folder!r} + "/mpm_objects.py", steps=2, grid_density=16)
run({folder!r} + "/cloth.py", steps=2, res=5)
history = run({folder!r} + "/go2_walk.py", n_envs=2, shards=1, iterations=2, steps_per_env=4, episode_length=4)
assert len(history) == 2 and all(np.isfinite(history))
video = run({root!r} + "/examples/render_reach.py", video=os.path.join(tempfile.mkdtemp(), "reach.mp4"),
            iterations=1, n_envs=2, shards=1, steps=3, res=(64, 48))
frames = imageio.mimread(video)
assert len(frames) == 3 and frames[0].shape == (48, 64, 3), [f.shape for f in frames]
assert all(f.std() > 5 for f in frames), "a blank frame"  # (that frames follow the env: test_camera, test_cli)
print("ALL EXAMPLES RAN")
"""


def test_genesis_examples_run():
    code = RUNS.format(folder=str(ROOT / "examples" / "genesis"), root=str(ROOT))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=900,
                            env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ALL EXAMPLES RAN" in result.stdout
    assert "hand-target distance" in result.stdout and "lowest cloth point" in result.stdout
    assert re.search(r"iteration    2: mean reward per step +-?\d.*return +-?\d", result.stdout), result.stdout[-2000:]
    assert "wrote 3 frames" in result.stdout
    print("\n".join(line for line in result.stdout.splitlines() if line.startswith("EXAMPLE ")))
