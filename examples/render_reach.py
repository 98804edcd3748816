"""A FrankaReach policy on video: train it here (rsl-rl PPO through gd.VecEnv), or load a run
folder that examples/train_reach.py wrote, then play the policy and record env 0 to an mp4
through the camera API (genesis_dist.env_video: the driver redraws env 0 from each state).

    python examples/render_reach.py --iterations 20 --video reach.mp4            # train, then record
    python examples/render_reach.py --run runs/reach --video reach.mp4           # a train_reach.py run
"""

import argparse

import numpy as np
import torch
from rsl_rl.runners import OnPolicyRunner

import genesis_dist as gd
from genesis_dist.env_video import EnvVideo
from genesis_dist.ppo_config import ppo_config
from genesis_dist.tasks import FrankaReach
from genesis_dist.tasks.reach import DEFAULTS as REACH
from genesis_dist.training import learn, load_training


def main(video: str = "reach.mp4", run: str | None = None, iterations: int = 20, n_envs: int = 32, shards: int = 2,
         steps: int = 200, res=(480, 360), seed: int = 0) -> str:
    torch.manual_seed(seed)
    cfg = {"seed": seed}
    env = gd.VecEnv(FrankaReach, n_envs=n_envs, n_shards=shards, task_cfg=cfg, backend="cpu",
                    resources_per_shard={"num_cpus": 1})
    runner = OnPolicyRunner(env, ppo_config(num_steps_per_env=24), log_dir=None, device="cpu")
    if run:
        load_training(run, env, runner)
        print(f"loaded {run} at iteration {runner.current_learning_iteration}")
    else:
        learn(runner, iterations, first=True)
        print(f"trained {iterations} iterations")
    policy = runner.get_inference_policy(device="cpu")
    recorder = EnvVideo(lambda n: FrankaReach(n, cfg).scene, res=res)
    obs = env.get_observations()
    distances = []
    with torch.inference_mode():
        for _ in range(steps):
            obs, _, dones, _ = env.step(policy(obs))
            recorder.add(env.scene.get_state())
            distances.append(obs["policy"][0, -3:].norm().item())  # env 0: hand - target
    path = recorder.save(video, fps=round(1 / REACH["dt"]))  # real time
    print(f"env 0: hand-target distance {distances[0]:.3f} m at the first frame, {np.min(distances):.3f} m at "
          f"the closest; wrote {recorder.n_frames} frames to {path}")
    env.close()
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default="reach.mp4")
    parser.add_argument("--run", default=None,
                        help="a folder written by examples/train_reach.py, with that run's --n-envs (else: train here)")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--n-envs", type=int, default=32)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    main(a.video, a.run, a.iterations, a.n_envs, a.shards, a.steps, seed=a.seed)
