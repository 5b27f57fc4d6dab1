"""The small shared pieces: params loading, image conversions and grids, the prepared-data contract."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from dfgan.core.errors import InputError
from dfgan.core.imaging import outline, save_grid, uint8_to_unit, unit_to_uint8
from dfgan.core.params_file import load_params
from dfgan.core.runtime import resolve_device
from dfgan.data.prepared_arrays import load_prepared, save_prepared

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_both_profiles_load_and_share_their_keys() -> None:
    demo = load_params(PROJECT_ROOT / "params.yaml")
    paper = load_params(PROJECT_ROOT / "params_paper.yaml")

    def keys(tree: dict, prefix: str = "") -> set[str]:
        out = set()
        for k, v in tree.items():
            out |= keys(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {prefix + k}
        return out

    assert keys(demo) == keys(paper) == keys(load_params(PROJECT_ROOT / "params_evidence.yaml"))
    assert paper["sizes"] == [50, 100, 250, 500, 1000, 2000]
    assert paper["data"]["image_size"] == 256 and paper["gan"]["batch_size"] == 16
    assert paper["gan"]["n_epochs"] + paper["gan"]["n_epochs_decay"] == 2000
    assert demo["gan"]["lambda_l1"] == paper["gan"]["lambda_l1"] == 100


def test_load_params_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.yaml: params file not found"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="list.yaml: expected a mapping"):
        load_params(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("data:\n  image_size: [64\n")
    with pytest.raises(InputError, match="broken.yaml: line 3 not valid YAML"):
        load_params(tmp_path / "broken.yaml")


def test_unit_conversion_round_trips_every_grey_level() -> None:
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    tensor = uint8_to_unit(images)
    assert tensor.shape == (1, 1, 16, 16)
    assert tensor.min() == -1.0 and tensor.max() == 1.0
    np.testing.assert_array_equal(unit_to_uint8(tensor), images)
    assert unit_to_uint8(torch.full((1, 1, 2, 2), 3.0)).max() == 255  # clipped, not wrapped


def test_outline_and_grid_write_a_png(tmp_path: Path) -> None:
    image = np.full((32, 32), 100, np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:16, 8:16] = 1
    rgb = outline(image, mask)
    assert rgb.shape == (32, 32, 3) and (rgb[8, 8] != rgb[0, 0]).any()
    path = save_grid([[image, rgb], [image]], tmp_path / "grid.png", row_labels=["a", "b"], tile=20)
    picture = cv2.imread(str(path))
    assert picture is not None and picture.shape[0] == 2 * 22
    with pytest.raises(ValueError, match="nothing to draw"):
        save_grid([], tmp_path / "empty.png")


def test_prepared_contract_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 8, 8), dtype=np.uint8)
    masks = (rng.random((6, 8, 8)) > 0.5).astype(np.uint8)
    index = pd.DataFrame({"row": range(6), "image_id": [f"id{i}" for i in range(6)]})
    save_prepared(tmp_path, images, masks, index, np.array([5]), {2: np.array([0, 1]), 4: np.array([0, 1, 2, 3])}, 7)
    data = load_prepared(tmp_path)
    assert data.sizes == [2, 4]
    np.testing.assert_array_equal(data.train(4).images, images[:4])
    np.testing.assert_array_equal(data.test().masks, masks[[5]])
    with pytest.raises(KeyError, match="size 3"):
        data.train(3)
    (tmp_path / "masks.npy").unlink()
    with pytest.raises(FileNotFoundError, match="masks.npy"):
        load_prepared(tmp_path)


def test_device_auto_is_cpu_without_cuda() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
