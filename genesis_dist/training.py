"""A PPO run on a gd.VecEnv that can stop anywhere between iterations and resume exactly.

Its state is one folder: env.pkl (every env's simulator state and the Task's per-env buffers:
one checkpoint that loads on any shard count), policy.pt (rsl-rl-lib's runner state: models,
optimizer, learning rate, iteration) and rng.pt (torch's random state, which drives action
sampling and minibatch order). Resumed from it, a run on the CPU with deterministic shards
continues the same trajectory as if it had never stopped.
"""

from __future__ import annotations

import os

import torch

ENV_FILE, POLICY_FILE, RNG_FILE = "env.pkl", "policy.pt", "rng.pt"
RANK_RNG_FILE = "rng_ranks.pt"  # data-parallel runs: every rank's random state (rng.pt holds rank 0's)


def save_training(folder, env, runner) -> None:
    os.makedirs(folder, exist_ok=True)
    env.save_checkpoint(os.path.join(folder, ENV_FILE))
    runner.save(os.path.join(folder, POLICY_FILE))
    torch.save(torch.get_rng_state(), os.path.join(folder, RNG_FILE))


def check_run_folder(folder) -> None:
    """Raise FileNotFoundError unless `folder` holds a saved run (central or data-parallel)."""
    missing = [name for name in (ENV_FILE, POLICY_FILE, RNG_FILE) if not os.path.exists(os.path.join(folder, name))]
    if missing:
        raise FileNotFoundError(f"{os.fspath(folder)!r} is not a saved training run: it has no {', '.join(missing)}")


def latest_run_folder(folder) -> str:
    """`folder` if it holds a saved run, else the saved run among its subfolders (a Ray Train run's
    checkpoint_NNNNNN folders) with the most iterations done; FileNotFoundError if none."""
    folder = os.fspath(folder)
    if os.path.exists(os.path.join(folder, ENV_FILE)) or not os.path.isdir(folder):
        check_run_folder(folder)
        return folder
    runs = sorted(d for d in os.listdir(folder) if d.startswith("checkpoint_")
                  and os.path.exists(os.path.join(folder, d, POLICY_FILE)))
    if not runs:
        raise FileNotFoundError(f"{folder!r} holds no saved training run ({ENV_FILE}, {POLICY_FILE}, {RNG_FILE}) "
                                f"and no checkpoint_* folder with one")
    check_run_folder(os.path.join(folder, runs[-1]))
    return os.path.join(folder, runs[-1])


def load_training(folder, env, runner) -> None:
    """Restore what save_training wrote (the env may have another shard count than the saver's;
    a data-parallel run's checkpoint loads too, with rank 0's random state)."""
    check_run_folder(folder)
    env.load_checkpoint(os.path.join(folder, ENV_FILE))
    runner.load(os.path.join(folder, POLICY_FILE))
    torch.set_rng_state(torch.load(os.path.join(folder, RNG_FILE)))


def learn(runner, iterations: int, first: bool) -> None:
    """runner.learn for `iterations` more iterations. `first`: the run's very first call, which
    starts episodes at random lengths (rsl-rl's exploration start); a resumed run must not."""
    runner.learn(num_learning_iterations=iterations, init_at_random_ep_len=first)
    runner.current_learning_iteration += 1  # learn() leaves it at the last iteration run, not the next
