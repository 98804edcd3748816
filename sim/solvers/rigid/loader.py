"""MJCF and URDF morphs -> compiled `mujoco.MjModel`, through `mujoco.MjSpec`.

URDF goes through MuJoCo's own URDF importer, which welds the root link to the world: unless
the morph is `fixed`, a free joint is added to every root body before compiling (as Genesis
gives a URDF robot a floating base). `package://name/...` mesh paths are rewritten to files
found above the URDF's folder or in the morph's `package_dirs`; relative paths are made
absolute, so the document compiles from a string.
"""

from __future__ import annotations

import hashlib
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np

from sim import morphs
from sim.solvers.rigid.model import check_supported


def morph_source(morph) -> str:
    """How errors name the model: the file's basename, or '<inline MJCF>'."""
    kind = type(morph).__name__
    return f"<inline {kind}>" if morphs.is_inline_xml(morph.file) else os.path.basename(morph.file)


def _package_path(uri: str, urdf_dir: Path, package_dirs: tuple) -> str:
    package, _, rest = uri[len("package://"):].partition("/")
    candidates = [d / package for d in [urdf_dir, *urdf_dir.parents]] + [Path(d) for d in package_dirs] \
        + [Path(d) / package for d in package_dirs]
    for root in candidates:
        if root.name == package and (root / rest).is_file():
            return str(root / rest)
    raise FileNotFoundError(f"{uri} not found in a folder {package!r} above {urdf_dir} nor in package_dirs "
                            f"{list(package_dirs)}")


def _urdf_spec(morph) -> mujoco.MjSpec:
    inline = morphs.is_inline_xml(morph.file)
    text = morph.file if inline else Path(morph.file).read_text()
    base = Path.cwd() if inline else Path(morph.file).parent
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ValueError(f"{morph_source(morph)} is not valid XML: {e}") from None
    if root.tag != "robot":
        raise ValueError(f"{morph_source(morph)}: a URDF's root element is <robot>, got <{root.tag}>")
    for mesh in root.iter("mesh"):
        name = mesh.get("filename")
        if name is None:
            continue
        if name.startswith("package://"):
            mesh.set("filename", _package_path(name, base, morph.package_dirs))
        elif not name.startswith("file://") and not os.path.isabs(name):
            mesh.set("filename", str((base / name).resolve()))
    spec = mujoco.MjSpec.from_string(ET.tostring(root, encoding="unicode"))
    spec.compiler.fusestatic = morph.merge_fixed_links
    if not morph.fixed:
        for body in spec.worldbody.bodies:
            body.add_freejoint()
    return spec


def compile_morph(morph) -> tuple[mujoco.MjModel, np.ndarray, np.ndarray]:
    """Compile an MJCF or URDF morph; returns the model, its initial qpos and ctrl (keyframe
    "home" if any, else qpos0 and zeros).
    Raises ValueError naming the file and the first element the rigid solver would not simulate."""
    source = morph_source(morph)
    try:
        if isinstance(morph, morphs.URDF):
            spec = _urdf_spec(morph)
        elif morphs.is_inline_xml(morph.file):
            spec = mujoco.MjSpec.from_string(morph.file)
        else:
            spec = mujoco.MjSpec.from_file(morph.file)
        m = spec.compile()
    except ValueError as e:
        raise ValueError(f"MuJoCo could not compile {source}: {e}") from None
    check_supported(m, source)
    qpos, ctrl = m.qpos0.copy(), np.zeros(m.nu)
    key = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_KEY, "home")
    if key >= 0:
        qpos, ctrl = m.key_qpos[key].copy(), m.key_ctrl[key].copy()
    return m, qpos, ctrl


def morph_fingerprint(morph) -> dict:
    """The basename (or '<inline ...>') and content hash of a model: the same model anywhere."""
    data = morph.file.encode() if morphs.is_inline_xml(morph.file) else Path(morph.file).read_bytes()
    return {"file": morph_source(morph), "sha256": hashlib.sha256(data).hexdigest()}
