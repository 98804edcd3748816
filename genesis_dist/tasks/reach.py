"""FrankaReach: move the Franka hand to a target point drawn per episode.

Actions (7, in [-1, 1]) are joint position targets around a home pose for the arm's PD
controller. Observations: joint positions and velocities, hand position, target, and their
difference. Reward: minus the hand-target distance; an episode ends at the time limit or when
the hand is within `success_radius`. Targets come from a generator seeded by (seed, global env
index, episode number), so they do not depend on how envs are sharded.
"""

from __future__ import annotations

import numpy as np

import sim as gs
from genesis_dist.task import Task

HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04, 0.04])
DEFAULTS = {"seed": 0, "episode_length": 100, "action_scale": 0.5, "success_radius": 0.05, "dt": 0.01,
            "hand_link": "hand", "target_low": (0.3, -0.3, 0.2), "target_high": (0.7, 0.3, 0.7)}


class FrankaReach(Task):
    num_actions = 7
    buffers = ("target", "episodes")

    def __init__(self, n_envs: int, cfg: dict | None = None, env_offset: int = 0):
        unknown = sorted(set(cfg or {}) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"FrankaReach: unknown cfg keys {unknown}; known: {sorted(DEFAULTS)}")
        cfg = {**DEFAULTS, **(cfg or {})}
        self.max_episode_length = int(cfg["episode_length"])
        super().__init__(n_envs, cfg, env_offset)

    def build_scene(self, n_envs):
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=self.cfg["dt"]))
        scene.add_entity(gs.morphs.Plane())
        self.robot = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
        scene.build(n_envs=n_envs)
        self.hand = self.robot.get_link(self.cfg["hand_link"])
        self.arm = np.arange(7)
        self.robot.set_dofs_kp(np.tile([4500.0, 4500, 3500, 3500, 2000, 2000, 2000, 100, 100], (n_envs, 1)))
        self.robot.set_dofs_kv(np.tile([450.0, 450, 350, 350, 200, 200, 200, 10, 10], (n_envs, 1)))
        self.robot.set_dofs_position(np.tile(HOME, (n_envs, 1)))
        self.robot.control_dofs_position(np.tile(HOME, (n_envs, 1)))
        self.start = scene.get_state()  # every episode starts here (the same for every env)
        self.episodes = np.zeros(n_envs, np.int32)
        self.target = np.zeros((n_envs, 3), np.float32)
        self._draw_targets(np.arange(n_envs))
        return scene

    def _draw_targets(self, envs_idx):
        low, high = np.asarray(self.cfg["target_low"]), np.asarray(self.cfg["target_high"])
        for i in envs_idx:
            rng = np.random.default_rng([self.cfg["seed"], self.env_offset + int(i), int(self.episodes[i])])
            self.target[i] = rng.uniform(low, high)

    def apply_actions(self, actions):
        goal = HOME[self.arm] + self.cfg["action_scale"] * np.clip(actions, -1.0, 1.0)
        self.robot.control_dofs_position(goal, dofs_idx_local=self.arm)

    def _hand_error(self):
        # each entity read gathers only the asked entries on the device (one kernel launch)
        return self.hand.get_pos().cpu().numpy() - self.target

    def evaluate(self):
        distance = np.linalg.norm(self._hand_error(), axis=1)
        return (-distance).astype(np.float32), distance < self.cfg["success_radius"]

    def observations(self):
        error = self._hand_error()
        obs = np.concatenate([self.robot.get_dofs_position().cpu().numpy(),
                              self.robot.get_dofs_velocity().cpu().numpy(),
                              error + self.target, self.target, error], axis=1)
        return {"policy": obs.astype(np.float32)}

    def reset_envs(self, envs_idx):
        self.scene.reset(state=self.start, envs_idx=envs_idx)
        self.episodes[envs_idx] += 1
        self._draw_targets(envs_idx)
