"""go2 learns to walk: velocity-command tracking on flat ground (genesis_dist.tasks.Go2Walk),
trained with rsl-rl-lib's PPO through gd.VecEnv, its envs sharded over Ray actors. One line
per PPO iteration: the mean reward per step of its rollout, and the mean return and length of
the last 100 episodes that ended (both measured by genesis_dist.train_runner.Runner's logger).

    python examples/genesis/go2_walk.py --n-envs 64 --shards 2 --iterations 100              # CPU, local Ray
    python examples/genesis/go2_walk.py --n-envs 4096 --shards 4 --backend gpu --iterations 1000 --out runs/go2
"""

import argparse
import statistics

import torch

import genesis_dist as gd
from genesis_dist.ppo_config import ppo_config
from genesis_dist.tasks import Go2Walk
from genesis_dist.train_runner import Runner
from genesis_dist.training import save_training


def main(n_envs: int = 64, shards: int = 2, iterations: int = 100, steps_per_env: int = 24, backend: str = "cpu",
         episode_length: int = 1000, out: str | None = None, seed: int = 0):
    torch.manual_seed(seed)
    resources = {"num_cpus": 1, "num_gpus": 1} if backend == "gpu" else {"num_cpus": 1}
    env = gd.VecEnv(Go2Walk, n_envs=n_envs, n_shards=shards, backend=backend, resources_per_shard=resources,
                    task_cfg={"seed": seed, "episode_length": episode_length})
    print(f"go2: {env.num_envs} envs on {env.scene.n_shards} shards, {env.num_actions} actions")
    device = "cuda" if backend == "gpu" and torch.cuda.is_available() else "cpu"
    history = []

    def report(runner, done, times):  # called after every iteration; runner.logger measured the rollouts
        log = runner.logger
        history.append(log.rollout_reward)
        ended = (f"{statistics.mean(log.episode_returns):8.3f}, length {statistics.mean(log.episode_lengths):6.1f}"
                 if log.episode_returns else "     n/a")
        print(f"iteration {done:4d}: mean reward per step {log.rollout_reward:8.4f}, "
              f"last 100 episodes: return {ended}", flush=True)

    runner = Runner(env, ppo_config(num_steps_per_env=steps_per_env), log_dir=None, device=device,
                    after_iteration=report)
    runner.train(iterations, first=True)
    if out:
        save_training(out, env, runner)
        print("saved the run to", out)
    env.close()
    return history


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-envs", type=int, default=64)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--steps-per-env", type=int, default=24)
    parser.add_argument("--backend", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--episode-length", type=int, default=1000)
    parser.add_argument("--out", default=None, help="save the run here at the end (genesis_dist.training)")
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    main(a.n_envs, a.shards, a.iterations, a.steps_per_env, a.backend, a.episode_length, a.out, a.seed)
