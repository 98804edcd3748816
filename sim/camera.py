"""Cameras (`scene.add_camera`): images of one env through MuJoCo's own renderer.

Rigid entities are attached, in scene order, into one MuJoCo model (`mujoco.MjSpec.attach`),
so its qpos has exactly the rigid solver's layout; a render copies one env's qpos into it,
runs MuJoCo's kinematics and rasterises with `mujoco.Renderer` (headless: set MUJOCO_GL=egl).
Particles and vertices of the other solvers are drawn as small spheres. Depth comes back in
metres along the view axis, segmentation as labels per pixel (VisOptions.segmentation_level:
entity index, solver link index, or geom index of the rendered model; -1 where nothing is).
Recording keeps every rgb frame rendered between start_recording and stop_recording and
writes them with imageio (imageio-ffmpeg's mp4 writer).
"""

from __future__ import annotations

import os
import warnings

import mujoco
import numpy as np

from sim import morphs
from sim.field_access import gather
from sim.validate import require_built

_PALETTE = [(0.85, 0.55, 0.25, 1.0), (0.25, 0.55, 0.9, 1.0), (0.8, 0.3, 0.35, 1.0), (0.35, 0.75, 0.4, 1.0)]


class SceneModel:
    """The rendered MuJoCo model of a scene's rigid entities and how its parts map back."""

    def __init__(self, scene):
        rigid = scene.solvers["RigidSolver"]
        spec = mujoco.MjSpec()
        spec.worldbody.add_light(pos=[0, 0, 4], dir=[0, 0, -1], diffuse=[0.6, 0.6, 0.6])
        for i, entity in enumerate(rigid.entities):
            child = _entity_spec(entity)
            child.option.timestep = spec.option.timestep  # solver settings do not matter for drawing
            pose = (entity.morph.pos, entity.morph.quat) if _is_file(entity.morph) else ((0, 0, 0), (1, 0, 0, 0))
            frame = spec.worldbody.add_frame(pos=list(pose[0]), quat=list(pose[1]))
            with warnings.catch_warnings():  # entities' own <option>s conflict; they do not matter for drawing
                warnings.filterwarnings("ignore", message="Attach conflict")
                spec.attach(child, frame=frame, prefix=f"e{i}/")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Attach conflict")
            self.model = spec.compile()
        m = self.model
        m.vis.headlight.ambient[:], m.vis.headlight.diffuse[:] = (0.35,) * 3, (0.6,) * 3
        if m.nq != rigid.model.nq:
            raise RuntimeError(f"the rendered model has {m.nq} qpos, the rigid solver {rigid.model.nq}")
        self.rigid = rigid
        # entity index (in scene.entities) of every rendered body; bodies follow the solver's
        # order, so body b is the solver's link b - 1
        body_entity = np.full(m.nbody, -1)
        prefixes = {f"e{i}/": e for i, e in enumerate(rigid.entities)}
        for b in range(1, m.nbody):
            name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, b) or ""
            entity = prefixes.get(name[:name.index("/") + 1] if "/" in name else "")
            if entity is not None:
                body_entity[b] = scene.entities.index(entity)
        self.geom_entity = np.where(m.geom_bodyid > 0, body_entity[m.geom_bodyid], -1)
        for g in range(m.ngeom):  # world geoms (planes) belong to the entity whose prefix they carry
            name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g) or ""
            if m.geom_bodyid[g] == 0 and "/" in name:
                self.geom_entity[g] = scene.entities.index(prefixes[name[:name.index("/") + 1]])
        self.geom_link = np.where(m.geom_bodyid > 0, m.geom_bodyid - 1, -1)
        for g in range(m.ngeom):
            surface = getattr(scene.entities[self.geom_entity[g]], "surface", None) if self.geom_entity[g] >= 0 else None
            rgba = surface.rgba() if surface is not None else None
            if rgba is not None:
                m.geom_rgba[g], m.geom_matid[g] = rgba, -1
        self.data = mujoco.MjData(m)


def _is_file(morph) -> bool:
    return getattr(morph, "file", None) is not None


def _entity_spec(entity) -> mujoco.MjSpec:
    from sim.solvers.rigid.model import primitive_xml

    morph = entity.morph
    if isinstance(morph, (morphs.Box, morphs.Sphere, morphs.Plane)):
        spec = mujoco.MjSpec.from_string(primitive_xml(morph, entity.material.rho, entity.material.friction))
    elif _is_file(morph):
        spec = mujoco.MjSpec.from_file(morph.file)
    else:
        raise TypeError(f"cannot render a {type(morph).__name__} morph")
    for key in list(spec.keys):  # keyframes of one entity do not fit the combined model
        spec.delete(key)
    return spec


class Camera:
    """A pinhole camera; Genesis's arguments. GUI=True (a window) is refused."""

    def __init__(self, scene, idx, res=(320, 240), pos=(3.5, 0.0, 2.5), lookat=(0.0, 0.0, 0.5), up=(0.0, 0.0, 1.0),
                 model="pinhole", fov=30.0, aperture=2.8, focus_dist=None, GUI=False, spp=256, denoise=None,  # noqa: N803
                 near=0.05, far=100.0, env_idx=None, debug=False):
        if GUI:
            raise ValueError("add_camera(GUI=True) is not supported: there is no display; render() returns images")
        if model != "pinhole":
            raise ValueError(f"camera model {model!r} is not supported (only 'pinhole')")
        res = tuple(int(r) for r in res)
        if len(res) != 2 or min(res) < 1:
            raise ValueError(f"res must be (width, height) in pixels, got {res!r}")
        if not 0 < float(fov) < 180:
            raise ValueError(f"fov must be in (0, 180) degrees, got {fov}")
        self.scene, self.idx, self.res, self.fov = scene, idx, res, float(fov)
        self.env_idx = env_idx
        self._renderer = None
        self._frames: list | None = None
        self.set_pose(pos=pos, lookat=lookat, up=up)

    def set_pose(self, transform=None, pos=None, lookat=None, up=None, env_idx=None):
        """Place the camera by a 4x4 camera-to-world transform (OpenGL axes: looks along -z, y up)
        or by pos / lookat / up (each kept when not given)."""
        if transform is not None:
            T = np.asarray(transform, dtype=np.float64)
            if T.shape != (4, 4):
                raise ValueError(f"transform must be 4x4, got {T.shape}")
            pos, lookat, up = T[:3, 3], T[:3, 3] - T[:3, 2], T[:3, 1]
        self.pos = np.asarray(self.pos if pos is None else pos, dtype=np.float64)
        self.lookat = np.asarray(self.lookat if lookat is None else lookat, dtype=np.float64)
        self.up = np.asarray(self.up if up is None else up, dtype=np.float64)
        forward = self.lookat - self.pos
        if np.linalg.norm(forward) < 1e-9 or np.linalg.norm(np.cross(forward, self.up)) < 1e-9:
            raise ValueError("camera pos must differ from lookat, and up must not be parallel to the view")

    # ------------------------------------------------------------------ rendering
    def _setup(self):
        scene = self.scene
        require_built(scene, "a camera")
        if getattr(scene, "_render_model", None) is None:
            scene._render_model = SceneModel(scene)
        sm = scene._render_model
        if self._renderer is None:
            m = sm.model
            m.vis.global_.offwidth = max(m.vis.global_.offwidth, self.res[0])
            m.vis.global_.offheight = max(m.vis.global_.offheight, self.res[1])
            n_points = sum(f.shape[1] for k, f in scene._store.fields.items()
                           if k.endswith(".pos") and not k.startswith("RigidSolver."))
            self._renderer = mujoco.Renderer(m, self.res[1], self.res[0], max_geom=m.ngeom + n_points + 100)
        return sm

    def _update(self, sm, env):
        scene, m, d = self.scene, sm.model, sm.data
        rigid = sm.rigid
        if rigid.is_active:
            d.qpos[:] = _row(scene._store.fields["RigidSolver.qpos"], env)[:m.nq]
            mujoco.mj_kinematics(m, d)
        m.vis.global_.fovy = self.fov
        r = self._renderer
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        forward = (self.lookat - self.pos) / np.linalg.norm(self.lookat - self.pos)
        cam.lookat[:], cam.distance = self.lookat, np.linalg.norm(self.lookat - self.pos)
        cam.azimuth = np.degrees(np.arctan2(forward[1], forward[0]))
        cam.elevation = np.degrees(np.arcsin(np.clip(forward[2], -1, 1)))
        r.update_scene(d, camera=cam)
        up = self.up - forward * np.dot(self.up, forward)
        for glcam in r.scene.camera:
            glcam.pos[:], glcam.forward[:], glcam.up[:] = self.pos, forward, up / np.linalg.norm(up)
        level = scene.vis_options.segmentation_level
        labels = {"entity": sm.geom_entity, "link": sm.geom_link, "geom": np.arange(m.ngeom)}[level]
        for i in range(r.scene.ngeom):  # label each model geom for segmentation
            g = r.scene.geoms[i]
            if g.objtype == mujoco.mjtObj.mjOBJ_GEOM:
                g.objid = int(labels[g.objid])
        self._add_particles(r.scene, env, level)

    def _add_particles(self, mjscene, env, level):
        scene = self.scene
        scale = scene.vis_options.particle_size_scale
        for k, solver in enumerate(s for s in scene.active_solvers if s.name != "RigidSolver"):
            fields = scene._store.fields
            if f"{solver.name}.pos" not in fields:
                continue
            pos = _row(fields[f"{solver.name}.pos"], env)
            active = _row(fields[f"{solver.name}.active"], env) if f"{solver.name}.active" in fields else np.ones(len(pos))
            size = getattr(solver, "particle_size", None) or getattr(solver.options, "particle_size", None) or 0.02
            radius = 0.5 * float(size) * scale
            for entity in solver.entities:
                rows = getattr(entity, "particles", slice(0, len(pos)))
                surface = getattr(entity, "surface", None)
                rgba = np.asarray((surface.rgba() if surface is not None else None) or _PALETTE[k % len(_PALETTE)],
                                  dtype=np.float32)
                label = scene.entities.index(entity) if level == "entity" else -1
                for p, alive in zip(pos[rows], active[rows]):
                    if not alive or mjscene.ngeom >= mjscene.maxgeom:
                        continue
                    g = mjscene.geoms[mjscene.ngeom]
                    mujoco.mjv_initGeom(g, mujoco.mjtGeom.mjGEOM_SPHERE, np.full(3, radius), p.astype(np.float64),
                                        np.eye(3).ravel(), rgba)
                    g.objtype, g.objid, g.segid = mujoco.mjtObj.mjOBJ_UNKNOWN, label, mjscene.ngeom
                    mjscene.ngeom += 1

    def render(self, rgb=True, depth=False, segmentation=False, colorize_seg=False, normal=False,
               antialiasing=False, force_render=False, env_idx=None):
        """(rgb (H, W, 3) uint8, depth (H, W) float32 metres, segmentation (H, W) int32, None):
        what was asked for, the rest None, for env `env_idx` (default: the camera's, else 0)."""
        if normal:
            raise ValueError("render(normal=True) is not supported")
        env = self.env_idx if env_idx is None else env_idx
        env = 0 if env is None else int(env)
        n_envs = max(self.scene.n_envs or 0, 1)
        if not 0 <= env < n_envs:
            raise ValueError(f"env_idx {env} out of range for {n_envs} envs")
        sm = self._setup()
        self._update(sm, env)
        r = self._renderer
        out_rgb = out_depth = out_seg = None
        if rgb or self._frames is not None:
            out_rgb = r.render().copy()
            if self._frames is not None:
                self._frames.append(out_rgb)
        if depth:
            r.enable_depth_rendering()
            out_depth = r.render().copy()
            r.disable_depth_rendering()
        if segmentation:
            r.enable_segmentation_rendering()
            out_seg = r.render()[..., 0].astype(np.int32)
            r.disable_segmentation_rendering()
            if colorize_seg:
                out_seg = _colorize(out_seg)
        return (out_rgb if rgb else None), out_depth, out_seg, None

    # ------------------------------------------------------------------ recording
    def start_recording(self):
        self._frames = []

    def stop_recording(self, save_to_filename=None, fps=60):
        """Write the frames rendered since start_recording to an mp4 (or any imageio format)."""
        if self._frames is None:
            raise RuntimeError("stop_recording called without start_recording")
        frames, self._frames = self._frames, None
        if not frames:
            raise RuntimeError("no frame was rendered while recording; call cam.render() each step")
        import imageio.v2 as imageio

        path = save_to_filename or f"camera_{self.idx}.mp4"
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        imageio.mimwrite(path, frames, fps=fps, macro_block_size=1)
        return path


def _row(field, env: int) -> np.ndarray:
    """One env's row of a state field (one gather, not a copy of every env)."""
    return gather(field, [env], np.arange(field.shape[1]))[0].cpu().numpy()


def _colorize(seg: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    colors = rng.integers(0, 255, size=(int(seg.max()) + 2, 3), dtype=np.uint8)
    colors[0] = 0
    return colors[seg + 1]
