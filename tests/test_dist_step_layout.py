"""StepLayout: the one owner of a Task step's packed float32 reply (no Ray needed)."""

import numpy as np
import torch

from genesis_dist.step_layout import StepLayout


def test_pack_then_unpack_gives_back_every_group_and_column():
    rng = np.random.default_rng(0)
    obs = {"policy": rng.normal(size=(5, 7)).astype(np.float32), "critic": rng.normal(size=(5, 2, 3)).astype(np.float32)}
    out = {"obs": obs, "reward": rng.normal(size=5).astype(np.float32), "done": np.array([1, 0, 0, 1, 0], bool),
           "time_outs": np.array([0, 0, 0, 1, 0], bool), "episode_length": np.array([3, 0, 2**24 - 1, 0, 9], np.int32)}
    layout = StepLayout.of(obs)
    assert layout.obs_shapes == {"policy": (7,), "critic": (2, 3)} and layout.width == 7 + 6 + 4
    packed = layout.pack(out)
    assert packed.shape == (5, 17) and packed.dtype == np.float32
    for view in (packed, torch.from_numpy(packed)):
        got = layout.unpack(view)
        for name, value in obs.items():
            np.testing.assert_array_equal(np.asarray(got["obs"][name]), value)
        np.testing.assert_array_equal(np.asarray(got["reward"]), out["reward"])
        np.testing.assert_array_equal(np.asarray(got["done"]), out["done"])
        np.testing.assert_array_equal(np.asarray(got["time_outs"]), out["time_outs"])
        np.testing.assert_array_equal(np.asarray(got["episode_length"]).astype(np.int64), out["episode_length"])
