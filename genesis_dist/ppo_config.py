"""A small rsl-rl-lib PPO configuration that OnPolicyRunner accepts for a gd.VecEnv."""

from __future__ import annotations


def ppo_config(num_steps_per_env: int = 24, hidden_dims=(128, 128), learning_rate: float = 1e-3,
               num_learning_epochs: int = 5, num_mini_batches: int = 4, save_interval: int = 50) -> dict:
    """train_cfg for rsl_rl.runners.OnPolicyRunner: MLP actor (Gaussian) and critic on the "policy" group."""
    mlp = {"class_name": "MLPModel", "hidden_dims": list(hidden_dims), "activation": "elu"}
    return {
        "num_steps_per_env": num_steps_per_env,
        "save_interval": save_interval,
        "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
        "actor": {**mlp, "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 1.0}},
        "critic": dict(mlp),
        "algorithm": {"class_name": "PPO", "learning_rate": learning_rate, "num_learning_epochs": num_learning_epochs,
                      "num_mini_batches": num_mini_batches, "schedule": "adaptive", "desired_kl": 0.01},
    }
