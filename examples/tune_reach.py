"""Tune PPO's learning rate on the Franka reach task with Ray Tune; failed trials resume exactly.

    python examples/tune_reach.py                                    # CPU, local Ray, 2 small trials
    python examples/tune_reach.py --n-envs 4096 --shards 4 --backend gpu --iterations 500

Each trial is genesis_dist.tune.train_ppo: a gd.VecEnv sharded over Ray actors plus rsl-rl-lib's
PPO. A trial that fails restarts from its last checkpoint (the env state and the learner
together) up to --max-failures times, and a shard that dies inside a trial is replaced by the
scene's recovery policy without failing the trial at all.
"""

import argparse
import os

from ray import tune

import genesis_dist as gd
from genesis_dist import ray_session
from genesis_dist.tasks import FrankaReach
from genesis_dist.tune import train_ppo


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-envs", type=int, default=32)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--backend", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--max-failures", type=int, default=2)
    parser.add_argument("--out", default=os.path.abspath("runs/tune"))
    args = parser.parse_args()

    resources = {"num_cpus": 1, "num_gpus": 1} if args.backend == "gpu" else {"num_cpus": 1}
    config = {"task": FrankaReach, "n_envs": args.n_envs, "n_shards": args.shards, "iterations": args.iterations,
              "checkpoint_every": 2, "ppo": {"learning_rate": tune.grid_search([1e-3, 3e-4])},
              "scene": {"backend": args.backend, "resources_per_shard": resources,
                        "recovery": gd.Recovery(snapshot_every=100)}}
    # each trial holds 1 CPU and starts its own shards (each in their own placement group): the
    # local Ray needs room for both trials' shards at once (on a cluster, RAY_ADDRESS is joined)
    ray_session.connect(min_cpus=2 * (1 + args.shards))
    tuner = tune.Tuner(tune.with_resources(train_ppo, {"cpu": 1}), param_space=config,
                       run_config=tune.RunConfig(name="reach", storage_path=args.out,
                                                 failure_config=tune.FailureConfig(max_failures=args.max_failures)))
    results = tuner.fit()
    for result in results:
        reward = result.metrics.get("mean_reward", "no episode ended yet")
        print(f"learning_rate {result.config['ppo']['learning_rate']}: after {result.metrics['iteration']} iterations, "
              f"mean episode reward: {reward}; checkpoint {result.checkpoint.path}")


if __name__ == "__main__":
    main()
