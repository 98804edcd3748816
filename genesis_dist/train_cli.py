"""`genesis-dist train TASK ...`: the arguments, and the call into genesis_dist.train (imported only when run)."""

from __future__ import annotations

import sys


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="PPO on a bundled task: data-parallel on Ray Train, or central on a VecEnv",
                       description="Train a bundled task with rsl-rl's PPO. data-parallel: one Ray Train worker per "
                       "GPU (or CPU), each with its own envs and policy replica, gradients all-reduced; central: "
                       "one learner here, envs on shard actors. Checkpoints go to OUT/checkpoint_NNNNNN (one "
                       "merged env file each: resume on any worker count, in either mode); TensorBoard logs to "
                       "OUT/tensorboard.")
    p.add_argument("task", metavar="TASK", help="a task of genesis_dist.tasks, e.g. FrankaReach")
    p.add_argument("--n-envs", type=int, required=True, help="total envs, over all workers")
    p.add_argument("--workers", type=int, default=1, help="workers (data-parallel) or shards (central)")
    p.add_argument("--min-workers", type=int, default=None,
                   help="data-parallel only: elastic group of --min-workers..--workers workers (Ray Train)")
    p.add_argument("--mode", choices=("data-parallel", "central"), default="data-parallel")
    p.add_argument("--iterations", type=int, default=100, help="total PPO iterations (a resumed run counts its own)")
    p.add_argument("--checkpoint-every", type=int, default=10)
    p.add_argument("--out", default=None, help="run folder (default: runs/TASK-MODE)")
    p.add_argument("--resume", default=None, help="a run folder or one of its checkpoint_* folders")
    p.add_argument("--backend", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deterministic", action="store_true", help="CPU: bit-reproducible runs (and resumes)")
    p.add_argument("--max-failures", type=int, default=3, help="data-parallel: group restarts after a failure")


def run(args) -> int:
    from genesis_dist.train import BadSettings, train

    workers = args.workers if args.min_workers is None else (args.min_workers, args.workers)
    out = args.out or f"runs/{args.task}-{args.mode}"
    try:
        summary = train(args.task, args.n_envs, workers, mode=args.mode, iterations=args.iterations,
                        checkpoint_every=args.checkpoint_every, out=out, resume=args.resume, backend=args.backend,
                        seed=args.seed, deterministic=args.deterministic, max_failures=args.max_failures)
    except BadSettings as e:
        print(f"genesis-dist train: {e}", file=sys.stderr)
        return 2
    reward = f", mean episode reward {summary['mean_reward']:.3f}" if "mean_reward" in summary else ""
    print(f"trained {summary['iterations']} iterations ({summary['env_steps']} env steps) on "
          f"{summary['workers']} {'workers' if args.mode == 'data-parallel' else 'shards'}{reward}; "
          f"last checkpoint {summary['checkpoint']}")
    return 0

