"""Go2Walk: Unitree's go2 quadruped (Genesis's go2.urdf) tracks velocity commands on flat ground.

The locomotion task Genesis users start from, written here from the physics:

- Commands, drawn per episode (and again every `resample_s`): forward and sideways speed of the
  base in its own heading frame (m/s) and yaw rate (rad/s), uniform in `command_ranges`; drawn by a
  generator seeded by (seed, global env index, episode, draw), so they do not depend on sharding.
- Actions (12, clipped to +-`clip_actions`): joint position targets `default + action_scale *
  action` for the legs' PD servos (kp, kv), ordered FR, FL, RR, RL x (hip, thigh, calf) by name.
- Observations (45): base angular velocity in the base frame, gravity seen from the base, the
  command, joint angles minus the standing pose, joint velocities, the last actions (scaled to
  order one).
- Reward per step (each term times its weight and the control period dt): tracking of the
  commanded planar velocity and yaw rate (exp(-error^2 / tracking_sigma)), penalties on vertical
  base velocity, on the base height's distance from `base_height`, on the change of action
  between steps, and on distance from the standing pose.
- An episode ends at `episode_length` steps, or when the base rolls or pitches past
  `max_tilt_deg` (fallen).

The simulator runs at dt / substeps (0.02 s / 4 = 5 ms by default), the policy at dt.
"""

from __future__ import annotations

import numpy as np

import sim as gs
from sim.utils import geom
from genesis_dist.task import Task

LEGS = ("FR", "FL", "RR", "RL")
JOINTS = tuple(f"{leg}_{part}_joint" for leg in LEGS for part in ("hip", "thigh", "calf"))
# standing pose (rad): hips straight, thighs forward of vertical, knees bent; the rear thighs a
# little more so the base stands level
STAND = np.array([0.0, 0.8, -1.5, 0.0, 0.8, -1.5, 0.0, 1.0, -1.5, 0.0, 1.0, -1.5])
REWARD_TERMS = ("tracking_lin_vel", "tracking_ang_vel", "lin_vel_z", "base_height", "action_rate", "similar_to_default")
DEFAULTS = {
    "seed": 0, "episode_length": 1000, "dt": 0.02, "substeps": 4, "urdf": "urdf/go2/urdf/go2.urdf",
    "base_init_height": 0.32, "kp": 20.0, "kv": 0.5, "action_scale": 0.25, "clip_actions": 10.0,
    "command_ranges": ((-1.0, 1.0), (-0.5, 0.5), (-1.0, 1.0)), "resample_s": 4.0, "max_tilt_deg": 10.0,
    "base_height": 0.3, "tracking_sigma": 0.25,
    "reward_scales": {"tracking_lin_vel": 1.0, "tracking_ang_vel": 0.2, "lin_vel_z": -1.0, "base_height": -50.0,
                      "action_rate": -0.005, "similar_to_default": -0.1},
    # observation scales: angular velocity, commands (x, y, yaw), joint angles, joint velocities
    "obs_scales": {"ang_vel": 0.25, "lin_vel": 2.0, "dof_pos": 1.0, "dof_vel": 0.05},
}


class Go2Walk(Task):
    num_actions = 12
    buffers = ("commands", "episodes", "draws", "actions", "last_actions")

    def __init__(self, n_envs: int, cfg: dict | None = None, env_offset: int = 0):
        unknown = sorted(set(cfg or {}) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"Go2Walk: unknown cfg keys {unknown}; known: {sorted(DEFAULTS)}")
        cfg = {**DEFAULTS, **(cfg or {})}
        bad = sorted(set(cfg["reward_scales"]) - set(REWARD_TERMS))
        if bad:
            raise ValueError(f"Go2Walk: unknown reward terms {bad}; known: {list(REWARD_TERMS)}")
        ranges = np.asarray(cfg["command_ranges"], dtype=np.float64)
        if ranges.shape != (3, 2) or (ranges[:, 0] > ranges[:, 1]).any():
            raise ValueError(f"Go2Walk: command_ranges must be 3 (low, high) pairs, got {cfg['command_ranges']!r}")
        self.max_episode_length = int(cfg["episode_length"])
        self.resample_steps = max(1, round(cfg["resample_s"] / cfg["dt"]))
        super().__init__(n_envs, cfg, env_offset)

    # ------------------------------------------------------------------ scene
    def build_scene(self, n_envs):
        cfg = self.cfg
        scene = gs.Scene(sim_options=gs.options.SimOptions(dt=cfg["dt"], substeps=cfg["substeps"]))
        scene.add_entity(gs.morphs.Plane())
        self.robot = scene.add_entity(gs.morphs.URDF(file=cfg["urdf"], pos=(0.0, 0.0, cfg["base_init_height"])))
        scene.build(n_envs=n_envs)
        self.dofs = np.array([self.robot.get_joint(name).dofs_idx_local[0] for name in JOINTS])
        self.robot.set_dofs_kp(np.full(12, cfg["kp"]), self.dofs)
        self.robot.set_dofs_kv(np.full(12, cfg["kv"]), self.dofs)
        self.robot.set_dofs_position(np.tile(STAND, (n_envs, 1)), self.dofs)
        self.robot.control_dofs_position(np.tile(STAND, (n_envs, 1)), self.dofs)
        self.start = scene.get_state()  # every episode starts standing here (the same for every env)
        self.episodes = np.zeros(n_envs, np.int32)
        self.draws = np.zeros(n_envs, np.int32)  # command draws within the episode
        self.commands = np.zeros((n_envs, 3), np.float32)
        self.actions = np.zeros((n_envs, 12), np.float32)
        self.last_actions = np.zeros((n_envs, 12), np.float32)
        self._draw_commands(np.arange(n_envs))
        return scene

    def _draw_commands(self, envs_idx):
        ranges = np.asarray(self.cfg["command_ranges"])
        for i in envs_idx:
            rng = np.random.default_rng([self.cfg["seed"], self.env_offset + int(i), int(self.episodes[i]),
                                         int(self.draws[i])])
            self.commands[i] = rng.uniform(ranges[:, 0], ranges[:, 1])
            self.draws[i] += 1

    # ------------------------------------------------------------------ RL step
    def apply_actions(self, actions):
        self.last_actions[:] = self.actions
        self.actions[:] = np.clip(actions, -self.cfg["clip_actions"], self.cfg["clip_actions"])
        self.robot.control_dofs_position(STAND + self.cfg["action_scale"] * self.actions, self.dofs)

    def _base(self):
        """Base height, and its linear and angular velocity and gravity in the base frame."""
        quat = self.robot.get_quat().cpu().numpy()
        lin = geom.inv_transform_by_quat(self.robot.get_vel().cpu().numpy(), quat)
        ang = geom.inv_transform_by_quat(self.robot.get_ang().cpu().numpy(), quat)
        gravity = geom.inv_transform_by_quat(np.tile([0.0, 0.0, -1.0], (len(quat), 1)), quat)
        return self.robot.get_pos().cpu().numpy()[:, 2], lin, ang, gravity

    def evaluate(self):
        cfg, scales = self.cfg, self.cfg["reward_scales"]
        height, lin, ang, gravity = self._base()
        dof_pos = self.robot.get_dofs_position(self.dofs).cpu().numpy()
        terms = {
            "tracking_lin_vel": np.exp(-np.sum((self.commands[:, :2] - lin[:, :2]) ** 2, axis=1) / cfg["tracking_sigma"]),
            "tracking_ang_vel": np.exp(-(self.commands[:, 2] - ang[:, 2]) ** 2 / cfg["tracking_sigma"]),
            "lin_vel_z": lin[:, 2] ** 2,
            "base_height": (height - cfg["base_height"]) ** 2,
            "action_rate": np.sum((self.actions - self.last_actions) ** 2, axis=1),
            "similar_to_default": np.sum(np.abs(dof_pos - STAND), axis=1),
        }
        reward = sum(scales.get(name, 0.0) * value for name, value in terms.items()) * cfg["dt"]
        # fallen: the base's up axis more than max_tilt from vertical in roll or pitch
        limit = np.sin(np.radians(cfg["max_tilt_deg"]))
        fallen = (np.abs(gravity[:, 0]) > limit) | (np.abs(gravity[:, 1]) > limit)
        # new commands every resample_s, after this step's reward and before the next observation
        resample = np.flatnonzero((self.episode_length % self.resample_steps) == 0)
        self._draw_commands(resample)
        return reward.astype(np.float32), fallen

    def observations(self):
        s = self.cfg["obs_scales"]
        _, _, ang, gravity = self._base()
        command_scale = np.array([s["lin_vel"], s["lin_vel"], s["ang_vel"]])
        obs = np.concatenate([ang * s["ang_vel"], gravity, self.commands * command_scale,
                              (self.robot.get_dofs_position(self.dofs).cpu().numpy() - STAND) * s["dof_pos"],
                              self.robot.get_dofs_velocity(self.dofs).cpu().numpy() * s["dof_vel"],
                              self.actions], axis=1)
        return {"policy": obs.astype(np.float32)}

    def reset_envs(self, envs_idx):
        self.scene.reset(state=self.start, envs_idx=envs_idx)
        self.episodes[envs_idx] += 1
        self.draws[envs_idx] = 0
        self.actions[envs_idx] = 0.0
        self.last_actions[envs_idx] = 0.0
        self._draw_commands(envs_idx)
