"""`from sim.vis.camera import Camera`: Genesis's import path for the camera class that
scene.add_camera returns (sim.camera.Camera; there is only that one)."""

from sim.camera import Camera

__all__ = ["Camera"]
