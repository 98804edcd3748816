"""Parallel simulation: one scene, many envs, each driven by its own row of a torch tensor,
and a reset of only the envs that finished (an empty selection is fine).

    python examples/genesis/parallel_envs.py [--n-envs 64] [--steps 100]
"""

import argparse

import torch

import sim as gs


def main(n_envs: int = 64, steps: int = 100):
    gs.init(backend=gs.cpu)
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01), show_viewer=False)
    scene.add_entity(gs.morphs.Plane())
    franka = scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=n_envs, env_spacing=(1.0, 1.0))
    home = franka.get_dofs_position()
    offsets = torch.linspace(-0.5, 0.5, n_envs)[:, None]
    for i in range(steps):
        franka.control_dofs_position(home[:, :7] + offsets * torch.sin(torch.tensor(i / 20.0)), list(range(7)))
        scene.step()
        hand_z = franka.get_link("hand").get_pos()[:, 2]
        done = hand_z < 0.3  # whatever finished this step (often nothing)
        scene.reset(envs_idx=done)
    print("hand heights", franka.get_link("hand").get_pos()[:, 2].numpy().round(3))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    main(args.n_envs, args.steps)
