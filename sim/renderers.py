"""Genesis's renderer choices (`gs.renderers.*`). Cameras render through MuJoCo's rasteriser,
so `Rasterizer` is accepted; the ray tracer and the batch renderer are refused."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Rasterizer:
    """The default: cameras rasterise through `mujoco.Renderer`."""


class RayTracer:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("gs.renderers.RayTracer is not supported: cameras rasterise through MuJoCo's "
                                  "renderer (use gs.renderers.Rasterizer() or leave renderer unset)")


class BatchRenderer:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("gs.renderers.BatchRenderer is not supported: a camera renders one env at a time "
                                  "(cam.render(env_idx=...))")
