"""go2 learns to walk: velocity-command tracking on flat ground (genesis_dist.tasks.Go2Walk),
trained with rsl-rl-lib's PPO through gd.VecEnv, its envs sharded over Ray actors. One line
per PPO iteration: the mean reward per step of its rollout, and the mean return and length of
the episodes that ended in it.

    python examples/genesis/go2_walk.py --n-envs 64 --shards 2 --iterations 100              # CPU, local Ray
    python examples/genesis/go2_walk.py --n-envs 4096 --shards 4 --backend gpu --iterations 1000 --out runs/go2
"""

import argparse
import statistics

import torch
from rsl_rl.runners import OnPolicyRunner

import genesis_dist as gd
from genesis_dist.ppo_config import ppo_config
from genesis_dist.tasks import Go2Walk
from genesis_dist.training import learn, save_training


class RewardMeter:
    """Wraps env.step to measure what PPO's rollouts get: the mean reward per step, and the return
    and length of the episodes that finished (rsl-rl keeps those only when it writes logs)."""

    def __init__(self, env):
        self._step, env.step = env.step, self.step
        self.running, self.length = torch.zeros(env.num_envs), torch.zeros(env.num_envs)
        self.total, self.count, self.returns, self.lengths = 0.0, 0, [], []

    def step(self, actions):
        out = self._step(actions)
        reward, done = out[1].detach().cpu().reshape(-1), out[2].cpu().reshape(-1).bool()
        self.total, self.count = self.total + reward.sum().item(), self.count + reward.numel()
        self.running += reward
        self.length += 1
        self.returns += self.running[done].tolist()
        self.lengths += self.length[done].tolist()
        self.running[done], self.length[done] = 0.0, 0.0
        return out

    def read(self) -> tuple[float, float | None, float | None]:
        """(mean reward per step, mean return, mean length of finished episodes: None if none) since the last read."""
        finished = (statistics.mean(self.returns), statistics.mean(self.lengths)) if self.returns else (None, None)
        out = (self.total / max(self.count, 1), *finished)
        self.total, self.count, self.returns, self.lengths = 0.0, 0, [], []
        return out


def main(n_envs: int = 64, shards: int = 2, iterations: int = 100, steps_per_env: int = 24, backend: str = "cpu",
         episode_length: int = 1000, out: str | None = None, seed: int = 0):
    torch.manual_seed(seed)
    resources = {"num_cpus": 1, "num_gpus": 1} if backend == "gpu" else {"num_cpus": 1}
    env = gd.VecEnv(Go2Walk, n_envs=n_envs, n_shards=shards, backend=backend, resources_per_shard=resources,
                    task_cfg={"seed": seed, "episode_length": episode_length})
    print(f"go2: {env.num_envs} envs on {env.scene.n_shards} shards, {env.num_actions} actions")
    device = "cuda" if backend == "gpu" and torch.cuda.is_available() else "cpu"
    runner = OnPolicyRunner(env, ppo_config(num_steps_per_env=steps_per_env), log_dir=None, device=device)
    meter = RewardMeter(env)
    history = []
    for it in range(iterations):
        learn(runner, 1, first=(it == 0))
        per_step, ret, length = meter.read()
        history.append(per_step)
        ended = f"{ret:8.3f}, length {length:6.1f}" if ret is not None else "     n/a"
        print(f"iteration {it + 1:4d}: mean reward per step {per_step:8.4f}, episodes ended: return {ended}",
              flush=True)
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
