"""The shard actor: one process owning one scene shard (a contiguous range of envs) on one GPU or CPU.

The coordinator validates every request before sending it, so a shard only executes. The
actor keeps nothing the coordinator cannot rebuild: given the same payload it builds the same
shard, and `reset(state)` restores it, so a dead shard can be re-created and restored.
"""

from __future__ import annotations

import os
import time

import cloudpickle
import numpy as np
import ray
import taichi as ti

import sim as gs
from sim import checkpoint
from genesis_dist import step_channel
from genesis_dist.step_layout import StepLayout
from genesis_dist.task import BUFFER_PREFIX, Task, TaskSpec


def _split_task_buffers(arrays: dict) -> tuple[dict, dict]:
    """(the solvers' arrays, the Task's buffers) of a state."""
    buffers = {k: v for k, v in arrays.items() if k.startswith(BUFFER_PREFIX)}
    return {k: v for k, v in arrays.items() if k not in buffers}, buffers


class Shard:
    """Not used directly: `DistributedScene` wraps it with `ray.remote` and places it.

    payload: the cloudpickled build_scene function, or a TaskSpec.
    init: gs.init keywords (precision, deterministic, seed, and backend if the user chose one);
    by default the backend is gs.gpu exactly when Ray gave this actor a GPU.
    channel: where given ({"token": bytes, "ports": (first, last) or None}), the shard also listens
    for its coordinator's step connection (see step_channel), which must prove it holds the token.
    """

    def __init__(self, index: int, n_envs: int, env_offset: int, payload: bytes, init: dict,
                 channel: dict | None = None):
        self.index = index
        self.n_envs = n_envs
        self.task: Task | None = None
        self.step_layout: StepLayout | None = None
        self._endpoint = None
        self._error = None
        try:
            init = dict(init)
            backend = init.pop("backend", None) or (gs.gpu if ray.get_gpu_ids() else gs.cpu)
            gs.init(backend=backend, **init)
            factory = cloudpickle.loads(payload)  # after gs.init: unpickling may build things
            if isinstance(factory, TaskSpec):
                self.task = factory.task_cls(n_envs, factory.cfg, env_offset)
                self.scene = self.task.scene
            else:
                self.scene = factory(n_envs)
            self._check_scene()
            self._init_buffers = self.task.buffer_arrays() if self.task else {}
            if self.task is not None:
                self.step_layout = StepLayout.of(self.task.observations())
            if channel is not None:
                self._endpoint = step_channel.ShardEndpoint(ray.util.get_node_ip_address(), **channel)
        except Exception as e:  # re-raised by info(), so the driver sees the real exception type
            self._error = e

    def _check_scene(self):
        if not isinstance(self.scene, gs.Scene):
            raise TypeError(f"the build function must return a sim.Scene, got {type(self.scene).__name__}")
        if not self.scene.is_built or self.scene.n_envs != self.n_envs:
            raise ValueError(f"the build function was asked for n_envs={self.n_envs} but returned a scene "
                             f"{'built with n_envs=' + str(self.scene.n_envs) if self.scene.is_built else 'not built'}")

    def info(self) -> dict:
        """Checkpoint meta of this shard (scene + task buffers), where it runs, and the task's sizes."""
        if self._error is not None:
            raise self._error
        meta = self.scene.checkpoint_meta()
        if self.task is not None:
            buffers = [[k, list(v.shape[1:]), v.dtype.str] for k, v in self._init_buffers.items()]
            scene = {**meta["scene"], "task": type(self.task).__qualname__}
            meta = checkpoint.make_meta(scene, meta["layout"] + buffers, self.n_envs)
        out = {"meta": meta, "t": self.scene.t, "backend": gs.runtime.config().backend,
               "node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
               "channel": self._endpoint.address if self._endpoint else None}
        if self.task is not None:
            out["task"] = {"num_actions": self.task.num_actions, "max_episode_length": self.task.max_episode_length,
                           "step_layout": self.step_layout}
        return out

    def close(self) -> None:
        """Called before the actor is killed. Ending Taichi writes its offline cache of compiled
        kernels, which a killed process never does, so the next shard of this scene (a rebuild,
        a recovery, the next run) loads its kernels instead of compiling them (4 s less for the
        first Franka step here)."""
        if self._endpoint is not None:
            self._endpoint.close()
        ti.reset()

    def ping(self) -> int:
        """Answers while the shard lives (recovery asks which shards died)."""
        return os.getpid()

    def serve(self) -> None:
        """Answer step requests on the coordinator's connection until it releases this shard
        (see step_channel): the per-step path, without a Ray call per step."""
        if self._endpoint is None:
            raise RuntimeError("this shard was created without a step connection")
        self._endpoint.serve({
            step_channel.SCENE_STEP: lambda _: np.array([self.step()], np.int64),
            step_channel.TASK_STEP: lambda payload: self.packed_task_step(
                np.frombuffer(payload, np.float32).reshape(self.n_envs, self.task.num_actions)),
        })

    # ------------------------------------------------------------------ scene API
    def step(self) -> int:
        self.scene.step()
        return self.scene.t

    def get_state(self) -> dict[str, np.ndarray]:
        arrays = self.scene.get_state().arrays()
        if self.task is not None:
            arrays.update(self.task.buffer_arrays())
        return arrays

    def reset_to_start(self, envs_idx: np.ndarray | None) -> None:
        """These local envs (None: every env, and t = 0) back to their build-time state."""
        self.scene.reset(envs_idx=envs_idx)
        if self.task is not None:
            rows = self._init_buffers if envs_idx is None else {k: v[envs_idx] for k, v in self._init_buffers.items()}
            self.task.write_buffers(rows, envs_idx)

    def reset_all(self, arrays: dict, t: int) -> None:
        """Every env takes its row of `arrays` (n_envs rows), and the scene step t."""
        sim_arrays, buffers = _split_task_buffers(arrays)
        self.scene.reset(gs.SimState(sim_arrays, t, self.n_envs))
        if self.task is not None:
            self.task.write_buffers(buffers, None)

    def reset_rows(self, arrays: dict, envs_idx: np.ndarray) -> None:
        """Local env envs_idx[i] takes row i of `arrays`."""
        sim_arrays, buffers = _split_task_buffers(arrays)
        self.scene.reset_rows(sim_arrays, envs_idx)
        if self.task is not None:
            self.task.write_buffers(buffers, envs_idx)

    def apply(self, fn):
        """fn(scene) in this shard; e.g. an observation query returning (n_envs, ...) arrays."""
        return fn(self.scene)

    # ------------------------------------------------------------------ task API
    def packed_task_step(self, actions: np.ndarray) -> np.ndarray:
        """Task.step packed into one float32 array (one object to ship and to join; see StepLayout)."""
        return self.step_layout.pack(self.task.step(actions))

    def task_step(self, actions: np.ndarray) -> tuple[np.ndarray, float]:
        """packed_task_step as a Ray call, with the seconds it took here (to measure the coordinator)."""
        start = time.perf_counter()
        packed = self.packed_task_step(actions)
        return packed, time.perf_counter() - start

    def task_view(self) -> dict:
        """Observations and episode lengths now, without stepping."""
        return {"obs": self.task.observations(), "episode_length": self.task.episode_length.copy()}

    def set_episode_length(self, episode_length: np.ndarray) -> None:
        self.task.episode_length[:] = episode_length
