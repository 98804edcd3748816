"""PPO on a Task, data-parallel on Ray Train or central on a gd.VecEnv: `train(...)`, `genesis-dist train`.

    from genesis_dist.train import train
    from genesis_dist.tasks import FrankaReach
    summary = train(FrankaReach, n_envs=4096, workers=4, iterations=500, out="runs/reach", backend="gpu",
                    max_failures=3)

data-parallel (default): a ray.train.torch.TorchTrainer with `workers` workers (Ray sets up the
process group: gloo on CPU, NCCL on GPU). Worker r owns envs Layout(n_envs, workers).range(r),
builds its Task's scene in its own process (genesis_dist.train_env), and runs rsl-rl's
OnPolicyRunner in its multi-process mode (gradients all-reduced; genesis_dist.train_runner). No
observation leaves its worker. After every update the workers compare a hash of their policy's
parameters and stop with an error if they differ.

Every `checkpoint_every` iterations (and after the last) one Ray Train checkpoint,
`out/checkpoint_NNNNNN/`, holds the run: env.pkl (every worker's envs merged into one file in our
checkpoint format, the one a single sim.Scene with all envs writes, Task buffers included),
policy.pt (rsl-rl's runner state), rng.pt (rank 0's torch random state) and rng_ranks.pt (every
rank's). A run resumes from such a folder (`resume=`) on any number of workers, or in the central
VecEnv, and a central run's folder resumes here. A worker that dies restarts the group from the last
checkpoint (`max_failures`); on the CPU with deterministic=True the run then ends bit-identical to
an uninterrupted one. With the same number of workers every rank gets its own random state back;
with another number, rank 0 gets rank 0's and rank r > 0 a fresh one seeded by (seed, r, iteration).

workers=(min, max) asks Ray Train for an elastic group: it starts with as many workers as the
cluster can hold, and after a failure restarts with as many as it then can; the envs reshard onto
whatever group starts, since every start reads the world size.

central: one learner in this process over a gd.VecEnv of `workers` shard actors (every
observation travels to it); its checkpoints are training.save_training folders, out/checkpoint_NNNNNN.
"""

from __future__ import annotations

import os

import numpy as np
import ray
from tqdm import tqdm

from genesis_dist import ray_session, training
from genesis_dist.ppo_config import ppo_config
from genesis_dist.task import Task

MODES = ("data-parallel", "central")
# Ray Train's print patch sends a worker's print() past sys.stdout, where train_runner drops rsl-rl's
# console table (TensorBoard has its numbers); without the patch prints reach the driver as usual.
WORKER_ENV = {"RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}
BACKENDS = ("cpu", "gpu")


def bundled_tasks() -> dict[str, type]:
    """The tasks `genesis-dist train` knows by name."""
    from genesis_dist import tasks

    return {name: getattr(tasks, name) for name in tasks.__all__}


class BadSettings(ValueError):
    """A run refused before anything started: the message names what is wrong."""


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_settings(*args) -> tuple[int, int]:
    """Refuse bad input (BadSettings) before anything starts, no Ray call yet. Returns (min, max) workers."""
    try:
        return _check_settings(*args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        raise BadSettings(str(e)) from None


def _check_settings(task, n_envs, workers, mode, iterations, checkpoint_every, backend, resume, ppo):
    if isinstance(task, str):
        known = bundled_tasks()
        if task not in known:
            raise ValueError(f"unknown task {task!r}; the bundled tasks are {sorted(known)}")
    elif not (isinstance(task, type) and issubclass(task, Task)):
        raise TypeError(f"task must be a gd.Task subclass or a bundled task's name, got {task!r}")
    n_envs = _positive_int(n_envs, "n_envs")
    if isinstance(workers, tuple) and mode == "data-parallel":
        if len(workers) != 2:
            raise ValueError(f"workers=(min, max) needs two numbers, got {workers!r}")
        low, high = (_positive_int(w, "workers") for w in workers)
        if low > high:
            raise ValueError(f"workers=(min, max) needs min <= max, got {workers!r}")
    else:
        low = high = _positive_int(workers, "workers")
    if high > n_envs:
        raise ValueError(f"{high} workers for {n_envs} envs: every worker needs at least one env")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    _positive_int(iterations, "iterations")
    _positive_int(checkpoint_every, "checkpoint_every")
    ppo_config(**ppo)  # unknown keywords raise TypeError naming them
    if resume is not None:
        training.latest_run_folder(resume)
    return low, high


def check_gpus(backend: str, workers: int) -> None:
    """After joining Ray: a GPU run needs a GPU per worker (or shard) in the cluster."""
    have = ray.cluster_resources().get("GPU", 0)
    if backend == "gpu" and have < workers:
        raise BadSettings(f"backend='gpu' needs {workers} GPUs (one per worker), the Ray cluster has {have:g}")


def rank_seed(seed: int, rank: int, iteration: int = 0) -> int:
    """Torch seed of rank `rank` for a run that starts (iteration 0) or reshards (other iterations)
    there; rank 0 of a fresh run uses `seed` itself, as a central run does."""
    if rank == 0 and iteration == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank, iteration]).generate_state(1)[0])


def progress_line(done: int, total: int, elapsed: float, metrics: dict) -> str:
    """tqdm's progress meter for `done` of `total` iterations, with the iteration's metrics."""
    shown = {k: f"{v:.4g}" if isinstance(v, float) else v for k, v in metrics.items()
             if k in ("mean_reward", "env_steps", "rollout_s", "update_s")}
    return tqdm.format_meter(done, total, elapsed, unit="it", postfix=", ".join(f"{k}={v}" for k, v in shown.items()))


def train(task, n_envs: int, workers: int | tuple[int, int] = 1, *, mode: str = "data-parallel",
          iterations: int = 100, checkpoint_every: int = 10, out: str = "runs/train", resume: str | None = None,
          backend: str = "cpu", task_cfg: dict | None = None, ppo: dict | None = None, seed: int = 0,
          deterministic: bool = False, max_failures: int = 0, tensorboard: bool = True) -> dict:
    """Train `task` (a gd.Task subclass or a bundled task's name) for `iterations` PPO iterations in
    total (a resumed run counts the ones it had done). Returns a summary: iterations, env_steps,
    mean_reward and mean_reward_sem (mean episode return over every rank's last 100 finished
    episodes, and its standard error; when any ended), checkpoint (the last saved folder),
    history (every iteration's metrics: rollout_s, update_s, comm_s, ...), and for data-parallel
    runs param_digests (every rank's policy hash after each iteration).
    tensorboard: rsl-rl's TensorBoard scalars in out/tensorboard (written by rank 0)."""
    ppo = dict(ppo or {})
    low, high = check_settings(task, n_envs, workers, mode, iterations, checkpoint_every, backend, resume, ppo)
    task = bundled_tasks()[task] if isinstance(task, str) else task
    out = os.path.abspath(out)
    settings = {"task": task, "task_cfg": task_cfg, "n_envs": int(n_envs), "iterations": int(iterations),
                "checkpoint_every": int(checkpoint_every), "backend": backend, "ppo": ppo, "seed": int(seed),
                "deterministic": bool(deterministic), "out": out, "tensorboard": bool(tensorboard),
                "resume": None if resume is None else os.path.abspath(training.latest_run_folder(resume))}
    ray_session.connect(high)
    check_gpus(backend, high)
    if mode == "central":
        from genesis_dist.train_central import train_central

        return train_central(settings, high)
    return _fit(settings, low, high, max_failures)


def _fit(settings: dict, low: int, high: int, max_failures: int) -> dict:
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    gpu = settings["backend"] == "gpu"
    scaling = ScalingConfig(num_workers=high if low == high else (low, high), use_gpu=gpu,
                            resources_per_worker={"CPU": 1, **({"GPU": 1} if gpu else {})})
    run = RunConfig(name=os.path.basename(settings["out"]), storage_path=os.path.dirname(settings["out"]),
                    failure_config=FailureConfig(max_failures=max_failures),
                    checkpoint_config=CheckpointConfig(num_to_keep=None),
                    worker_runtime_env={"env_vars": {**ray_session.shard_env(), **WORKER_ENV}})
    result = TorchTrainer(worker_loop, train_loop_config=settings, scaling_config=scaling, run_config=run).fit()
    if result.error is not None:
        raise result.error
    summary = dict(result.return_value)
    summary["checkpoint"] = result.checkpoint.path if result.checkpoint is not None else None
    return summary


def worker_loop(settings: dict) -> dict:
    """One Ray Train worker: its slice of the envs, its policy replica, its share of each update."""
    from genesis_dist.train_worker import WorkerRun

    return WorkerRun(settings).run()
