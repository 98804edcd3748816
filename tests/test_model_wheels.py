"""The model-wheel cache: pinned names only, a clear error when a wheel is missing, env overrides."""

import pytest

from sim import model_wheels


def test_unknown_wheel_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown model wheel 'numpy'"):
        model_wheels.wheel_dir("numpy")


def test_missing_wheel_without_fetch_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("GENESIS_DIST_CACHE", str(tmp_path))
    with pytest.raises(model_wheels.ModelFetchError, match="genesis-dist assets"):
        model_wheels.wheel_dir("gymnasium", fetch=False)


def test_gs_assets_dir_overrides_the_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("GS_ASSETS_DIR", str(tmp_path))
    assert model_wheels.genesis_assets() == tmp_path
