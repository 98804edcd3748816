"""Genesis's surfaces (`gs.surfaces.*`): how an entity looks. Cameras honour `color` (an RGB or
RGBA tuple: the entity's geoms are drawn in it); every other field (textures, roughness, ior,
vis_mode, ...) is accepted and has no effect here."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Surface:
    color: tuple | None = None
    opacity: float | None = None
    roughness: float | None = None
    metallic: float | None = None
    emissive: tuple | None = None
    ior: float | None = None
    default_roughness: float = 1.0
    vis_mode: str | None = None
    smooth: bool = True
    double_sided: bool | None = None
    cutoff: float = 180.0
    normal_diff_clamp: float = 180.0
    recon_backend: str = "splashsurf"
    generate_foam: bool = False
    foam_options: object = None
    diffuse_texture: object = None
    specular_texture: object = None
    opacity_texture: object = None
    roughness_texture: object = None
    metallic_texture: object = None
    normal_texture: object = None
    emissive_texture: object = None

    def __post_init__(self):
        if self.color is not None:
            color = tuple(float(c) for c in self.color)
            if len(color) not in (3, 4) or not all(0.0 <= c <= 1.0 for c in color):
                raise ValueError(f"{type(self).__name__}.color must be 3 or 4 numbers in [0, 1], got {self.color!r}")
            object.__setattr__(self, "color", color)
        if self.vis_mode not in (None, "visual", "collision", "particle", "sdf", "recon"):
            raise ValueError(f"{type(self).__name__}.vis_mode {self.vis_mode!r} is not one of Genesis's modes")

    def rgba(self, default=(0.7, 0.7, 0.7, 1.0)) -> tuple | None:
        """The colour cameras draw with, or None to keep the model's own colours."""
        if self.color is None:
            return None
        alpha = self.opacity if self.opacity is not None else 1.0
        return self.color if len(self.color) == 4 else (*self.color, alpha)


def _kind(name: str, doc: str, **defaults):
    cls = type(name, (Surface,), {"__doc__": doc, "__annotations__": {k: type(v) for k, v in defaults.items()},
                                  **defaults})
    return dataclass(frozen=True)(cls)


Default = _kind("Default", "Genesis's default surface.")
BSDF = _kind("BSDF", "A principled BSDF surface.", specular_trans=0.0, diffuse_trans=0.0)
Plastic = _kind("Plastic", "A plastic surface.")
Rough = _kind("Rough", "A rough plastic surface.")
Smooth = _kind("Smooth", "A smooth plastic surface.")
Reflective = _kind("Reflective", "A reflective plastic surface.")
Collision = _kind("Collision", "Grey, for collision geometry.")
Metal = _kind("Metal", "A metal surface.", metal_type="iron")
Iron = _kind("Iron", "Iron.", metal_type="iron")
Aluminium = _kind("Aluminium", "Aluminium.", metal_type="aluminium")
Copper = _kind("Copper", "Copper.", metal_type="copper")
Gold = _kind("Gold", "Gold.", metal_type="gold")
Glass = _kind("Glass", "A glass surface.", subsurface=False, thickness=None, transmission_texture=None)
Water = _kind("Water", "A water surface.", subsurface=False, thickness=None, transmission_texture=None)
Emission = _kind("Emission", "A light-emitting surface.")
