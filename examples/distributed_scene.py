"""A Franka scene sharded over Ray actors, used like one sim.Scene with global env indices.

    python examples/distributed_scene.py                         # embedded local Ray, CPU shards
    RAY_ADDRESS=<head>:6379 python examples/distributed_scene.py --backend gpu --shards 4

The checkpoint it writes is the file a single sim.Scene with the same n_envs writes; it loads
back on any number of shards, or into a plain sim.Scene, as the end of this script shows.
"""

import argparse

import numpy as np

import genesis_dist as gd
import sim as gs


def build_scene(n_envs):  # runs inside every shard process, after gs.init
    scene = gs.Scene(sim_options=gs.options.SimOptions(dt=0.01))
    scene.add_entity(gs.morphs.Plane())
    scene.add_entity(gs.morphs.MJCF(file="franka.xml"))
    scene.build(n_envs=n_envs)
    return scene


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-envs", type=int, default=10)
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--backend", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--checkpoint", default="franka_checkpoint.pkl")
    args = parser.parse_args()
    resources = {"num_cpus": 1, "num_gpus": 1} if args.backend == "gpu" else {"num_cpus": 1}

    with gd.DistributedScene(build_scene, n_envs=args.n_envs, n_shards=args.shards, backend=args.backend,
                             resources_per_shard=resources) as scene:
        print(scene, "on", [info["backend"] for info in scene.shard_info])
        init_state = scene.get_state()
        for _ in range(50):
            scene.step()
        scene.reset(state=init_state, envs_idx=[0, args.n_envs // 2, args.n_envs - 1])  # any envs, any shards
        # entity queries run inside the shards; arrays come back in global env order
        qpos = scene.gather(lambda s: s.entities[1].get_dofs_position().numpy())
        print("joint positions of env 0 and env 1:\n", np.round(qpos[:2], 3))
        scene.save_checkpoint(args.checkpoint)
        print(f"saved {args.checkpoint} at t={scene.t}")

    plain = build_scene(args.n_envs)  # the same file in one plain scene, in this process
    plain.load_checkpoint(args.checkpoint)
    print(f"loaded into a plain sim.Scene: t={plain.t}, qpos equal: "
          f"{np.array_equal(plain.get_state()['RigidSolver.qpos'][:, :9], qpos)}")


if __name__ == "__main__":
    main()
