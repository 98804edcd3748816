"""Genesis's `genesis.vis` import paths (`from sim.vis.camera import Camera`)."""
