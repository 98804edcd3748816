"""Train the Franka to reach targets with rsl-rl-lib's PPO, its envs sharded over Ray actors.

    python examples/train_reach.py --n-envs 64 --shards 2 --iterations 10           # CPU, local Ray
    python examples/train_reach.py --n-envs 16384 --shards 4 --backend gpu --iterations 500 --out runs/reach
    python examples/train_reach.py ... --resume runs/reach --shards 8                # resume on 8 shards

Every --save-every iterations it saves the run to --out (genesis_dist.training: env.pkl, every
env's simulator state and the task's per-env buffers, one file whatever the shard count;
policy.pt, rsl-rl's runner state; rng.pt). --resume loads them, on any number of shards, and
training continues.

This is the central design written out as one loop. For data-parallel training on Ray Train (one
learner per worker, no observation leaves its worker) use `genesis-dist train FrankaReach --workers W`
(genesis_dist.train); its checkpoints and these folders resume each other.
"""

import argparse

import torch
from rsl_rl.runners import OnPolicyRunner

import genesis_dist as gd
from genesis_dist.ppo_config import ppo_config
from genesis_dist.training import learn, load_training, save_training
from genesis_dist.tasks import FrankaReach


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-envs", type=int, default=64)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--backend", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--save-every", type=int, default=5)
    parser.add_argument("--out", default="runs/reach")
    parser.add_argument("--resume", default=None, help="a folder written by an earlier run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    resources = {"num_cpus": 1, "num_gpus": 1} if args.backend == "gpu" else {"num_cpus": 1}
    env = gd.VecEnv(FrankaReach, n_envs=args.n_envs, n_shards=args.shards, task_cfg={"seed": args.seed},
                    backend=args.backend, resources_per_shard=resources)
    print(f"{env.num_envs} envs on {env.scene.n_shards} shards {env.scene.layout.sizes}, "
          f"backends {[s['backend'] for s in env.scene.shard_info]}")
    device = "cuda" if args.backend == "gpu" and torch.cuda.is_available() else "cpu"
    runner = OnPolicyRunner(env, ppo_config(num_steps_per_env=24), log_dir=None, device=device)
    if args.resume:
        load_training(args.resume, env, runner)
        print(f"resumed from {args.resume} at iteration {runner.current_learning_iteration}, env step {env.scene.t}")

    done = 0
    while done < args.iterations:
        chunk = min(args.save_every, args.iterations - done)
        learn(runner, chunk, first=(done == 0 and not args.resume))
        done += chunk
        save_training(args.out, env, runner)
        obs = env.get_observations()["policy"]
        distance = obs[:, -3:].norm(dim=1).mean().item()  # the last 3 columns: hand - target
        print(f"{runner.current_learning_iteration} iterations: mean hand-target distance {distance:.3f} m, "
              f"saved to {args.out}")
    env.close()


if __name__ == "__main__":
    main()
