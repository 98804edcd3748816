"""Helpers Genesis scripts import (`sim.utils.geom` for `genesis.utils.geom`)."""
