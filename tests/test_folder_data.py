"""The folder dataset (``data.format: folder``): pairing, the grey and mask rules, bad input, and equality with the
SIIM path on a folder copy of the phantom."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from dfgan.data.dicom_io import read_dicom
from dfgan.data.folder_data import find_folder_images, read_folder_image, read_folder_mask
from dfgan.data.phantom import generate_phantom
from dfgan.data.prepare_folder import prepare_folder_dataset
from dfgan.data.prepare_siim import prepare_dataset
from dfgan.data.prepared_arrays import load_prepared
from dfgan.data.rle import decode_union, is_empty_code
from dfgan.data.siim import CODE_COLUMN, ID_COLUMN, PrepareError, find_dicoms, read_rle_table

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COMMON: dict[str, Any] = dict(image_size=32, test_size=4, sizes=[4, 6], seed=0, workers=1, mask_threshold=0.25)


def write_folder_copy(siim_dir: Path, out: Path) -> Path:
    """The SIIM tree as a folder dataset: each DICOM decoded to an 8-bit PNG, each positive row its own 0/255
    mask ``<id>_mask_<k>.png``, negatives without a mask file."""
    (out / "images").mkdir(parents=True)
    (out / "masks").mkdir()
    table = read_rle_table(siim_dir / "train-rle.csv")
    dicoms = find_dicoms(siim_dir, "dicom-images-train/**/*.dcm")
    for image_id, path in dicoms.items():
        image = read_dicom(path)
        cv2.imwrite(str(out / "images" / f"{image_id}.png"), image)
        codes = [c for c in table.loc[table[ID_COLUMN] == image_id, CODE_COLUMN] if not is_empty_code(c)]
        for k, code in enumerate(codes):
            mask = decode_union([code], image.shape[0], image.shape[1], image_id)
            cv2.imwrite(str(out / "masks" / f"{image_id}_mask_{k}.png"), mask * 255)
    return out


@pytest.fixture(scope="module")
def phantom_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("siim")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DFGAN_NO_PROGRESS", "1")
        generate_phantom(out, count=16, positive_fraction=0.75, image_size=128, seed=5, jpeg_fraction=0.3)
    return out


def small_folder(root: Path, count: int = 12) -> Path:
    """``count`` images with one square lesion each (two mask files for the first), plus one negative."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k in range(count):
        cv2.imwrite(str(root / "images" / f"case{k:02d}.png"), rng.integers(0, 255, (40, 40), dtype=np.uint8))
        mask = np.zeros((40, 40), np.uint8)
        mask[5 + k : 15 + k, 8:20] = 255
        cv2.imwrite(str(root / "masks" / f"case{k:02d}_mask.png"), mask)
    extra = np.zeros((40, 40), np.uint8)
    extra[30:36, 30:36] = 1  # a 0/1 mask
    cv2.imwrite(str(root / "masks" / "case00_mask_1.png"), extra)
    cv2.imwrite(str(root / "images" / "healthy.png"), rng.integers(0, 255, (40, 40), dtype=np.uint8))
    return root


def run_folder(raw: Path, work: Path, **overrides: Any) -> dict[str, Any]:
    return prepare_folder_dataset(raw, work / "prepared", work / "metrics" / "data.json", **{**COMMON, **overrides})


def test_a_folder_copy_of_the_phantom_prepares_to_the_same_arrays(phantom_tree: Path, tmp_path: Path) -> None:
    folder = write_folder_copy(phantom_tree, tmp_path / "folder")
    siim = prepare_dataset(phantom_tree, tmp_path / "a" / "prepared", tmp_path / "a" / "data.json",
                           dicom_glob="dicom-images-train/**/*.dcm", rle_csv="train-rle.csv", missing_dicom="report",
                           val_fraction=0.25, **COMMON)
    folder_metrics = run_folder(folder, tmp_path / "b", val_fraction=0.25)
    a, b = load_prepared(tmp_path / "a" / "prepared"), load_prepared(tmp_path / "b" / "prepared")
    assert len(a.images) == siim["kept"] == folder_metrics["kept"] > 0
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert list(a.index.image_id) == list(b.index.image_id)
    np.testing.assert_array_equal(a.index.mask_fraction, b.index.mask_fraction)
    assert folder_metrics["negatives"] == siim["negatives"]
    assert folder_metrics["regions_per_image"] == siim["regions_per_image"]
    assert all(p.startswith("images/") for p in b.index.dicom_path)


def test_pairing_union_negatives_and_relative_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = small_folder(tmp_path / "raw")
    metrics = run_folder(raw, tmp_path / "out")
    assert metrics["image_files"] == 13 and metrics["mask_files"] == 13
    assert metrics["positives"] == 12 and metrics["negatives"] == 1 and metrics["skipped"]["missing_mask"] == 1
    assert metrics["regions_per_image"] == {"1": 11, "2": 1, "3+": 0}
    data = load_prepared(tmp_path / "out" / "prepared")
    first = list(data.index.image_id).index("case00")
    full = read_folder_mask(raw / "masks" / "case00_mask.png", 0.5) | read_folder_mask(raw / "masks" / "case00_mask_1.png", 0.5)
    assert data.index.mask_fraction[first] == pytest.approx(full.mean(), abs=1e-7)
    monkeypatch.chdir(tmp_path)
    run_folder(Path("raw"), tmp_path / "relative")
    again = load_prepared(tmp_path / "relative" / "prepared")
    assert list(again.index.dicom_path) == list(data.index.dicom_path)
    assert (tmp_path / "relative" / "prepared" / "index.csv").read_bytes() == (
        tmp_path / "out" / "prepared" / "index.csv").read_bytes()


def test_grey_rule_sixteen_bit_and_colour(tmp_path: Path) -> None:
    ramp = np.linspace(1000, 5000, 64 * 64).reshape(64, 64).astype(np.uint16)
    for name in ("ramp.png", "ramp.tif"):
        cv2.imwrite(str(tmp_path / name), ramp)
        grey = read_folder_image(tmp_path / name)
        assert grey.dtype == np.uint8 and grey.min() == 0 and grey.max() == 255  # whole range kept, not the low byte
        assert len(np.unique(grey)) == 256
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 2] = 200  # pure red (OpenCV stores BGR)
    cv2.imwrite(str(tmp_path / "red.png"), colour)
    assert np.all(read_folder_image(tmp_path / "red.png") == round(0.299 * 200))


def test_mask_rule_values_and_antialiased_edges(tmp_path: Path) -> None:
    values = np.array([[0, 60, 127, 128, 200, 255]], np.uint8)
    cv2.imwrite(str(tmp_path / "edge.png"), values)
    np.testing.assert_array_equal(read_folder_mask(tmp_path / "edge.png", 0.5), [[0, 0, 0, 1, 1, 1]])
    cv2.imwrite(str(tmp_path / "binary.png"), np.array([[0, 1, 1, 0]], np.uint8))
    np.testing.assert_array_equal(read_folder_mask(tmp_path / "binary.png", 0.5), [[0, 1, 1, 0]])
    wide = np.array([[0, 65535, 30000]], np.uint16)
    cv2.imwrite(str(tmp_path / "wide.png"), wide)
    np.testing.assert_array_equal(read_folder_mask(tmp_path / "wide.png", 0.5), [[0, 1, 0]])
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0, 1] = 255
    cv2.imwrite(str(tmp_path / "rgb.png"), rgb)
    np.testing.assert_array_equal(read_folder_mask(tmp_path / "rgb.png", 0.5), [[1, 0], [0, 0]])


def test_a_mask_of_another_size_is_resized_with_the_mask_rule(tmp_path: Path) -> None:
    raw = small_folder(tmp_path / "raw")
    big = np.zeros((80, 80), np.uint8)
    big[10:30, 16:40] = 255
    cv2.imwrite(str(raw / "masks" / "case03_mask.png"), big)
    run_folder(raw, tmp_path / "out", image_size=40)
    data = load_prepared(tmp_path / "out" / "prepared")
    row = list(data.index.image_id).index("case03")
    expected = np.zeros((40, 40), np.uint8)
    expected[5:15, 8:20] = 1
    np.testing.assert_array_equal(data.masks[row], expected)


def test_pairs_csv(tmp_path: Path) -> None:
    raw = small_folder(tmp_path / "raw")
    lines = ["image,mask"] + [f"images/case{k:02d}.png,masks/case{k:02d}_mask.png" for k in range(12)]
    lines += ["images/case00.png,masks/case00_mask_1.png", "images/healthy.png,"]
    (raw / "pairs.csv").write_text("\n".join(lines) + "\n")
    by_csv = run_folder(raw, tmp_path / "csv", pairs_csv="pairs.csv")
    by_folder = run_folder(raw, tmp_path / "folder")
    assert by_csv == by_folder
    a, b = load_prepared(tmp_path / "csv" / "prepared"), load_prepared(tmp_path / "folder" / "prepared")
    np.testing.assert_array_equal(a.masks, b.masks)


def damage(raw: Path, case: str) -> tuple[dict[str, Any], str]:
    """Break ``raw`` one way; return the overrides to use and the file the message must name."""
    if case == "mask_without_image":
        cv2.imwrite(str(raw / "masks" / "ghost_mask.png"), np.zeros((4, 4), np.uint8))
        return {}, "ghost_mask.png"
    if case == "image_without_mask":
        return {"missing_mask": "error"}, "healthy.png"
    if case == "unreadable_image":
        (raw / "images" / "case05.png").write_bytes(b"not a png")
        return {}, "case05.png"
    if case == "unreadable_mask":
        (raw / "masks" / "case06_mask.png").write_bytes(b"\x89PNG broken")
        return {}, "case06_mask.png"
    if case == "empty_folder":
        for path in (raw / "images").iterdir():
            path.unlink()
        return {}, "images"
    if case == "no_masks_folder":
        for path in (raw / "masks").iterdir():
            path.unlink()
        (raw / "masks").rmdir()
        return {}, "masks"
    if case == "csv_missing_file":
        (raw / "pairs.csv").write_text("image,mask\nimages/case00.png,masks/nope.png\n")
        return {"pairs_csv": "pairs.csv"}, "CSV row 1"
    raise AssertionError(case)


BAD_CASES = ("mask_without_image", "image_without_mask", "unreadable_image", "unreadable_mask", "empty_folder",
             "no_masks_folder", "csv_missing_file")


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_names_the_file_and_writes_nothing(case: str, tmp_path: Path) -> None:
    raw = small_folder(tmp_path / "raw")
    overrides, named = damage(raw, case)
    with pytest.raises(PrepareError, match=named.replace(".", r"\.")):
        run_folder(raw, tmp_path / "out", **overrides)
    assert not (tmp_path / "out").exists()


def stage_params(raw: Path, **data: Any) -> dict[str, Any]:
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["sizes"] = [4, 6]
    params["phantom"]["generate"] = []
    params["gan"]["batch_size"] = 2
    params["data"].update({"format": "folder", "raw_dir": str(raw), "image_size": 32, "test_size": 4, **data})
    return params


def run_stage_module(module: str, params: dict[str, Any], cwd: Path) -> subprocess.CompletedProcess[str]:
    (cwd / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "DFGAN_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", module], cwd=cwd, env=env, text=True, capture_output=True)


@pytest.mark.parametrize("case", ("mask_without_image", "unreadable_image", "image_without_mask"))
def test_the_stage_says_one_line_exits_2_and_writes_nothing(case: str, tmp_path: Path) -> None:
    raw = small_folder(tmp_path / "raw")
    overrides, named = damage(raw, case)
    work = tmp_path / "work"
    work.mkdir()
    result = run_stage_module("stages.prepare", stage_params(raw, **overrides), work)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and lines[0].startswith("error: ")
    assert sorted(p.name for p in work.iterdir()) == ["params.yaml"]


def test_check_counts_a_folder_dataset(tmp_path: Path) -> None:
    raw = small_folder(tmp_path / "raw")
    work = tmp_path / "work"
    work.mkdir()
    result = run_stage_module("stages.check", stage_params(raw), work)
    assert result.returncode == 0, result.stderr
    assert f"{raw}: 13 images, 13 mask files, 12 positive, 1 negative" in result.stdout
    too_many = stage_params(raw)
    too_many["sizes"] = [20]
    refused = run_stage_module("stages.check", too_many, work)
    assert refused.returncode == 2 and "12 images have a lesion" in refused.stderr


@pytest.mark.slow
def test_dvc_repro_runs_a_folder_dataset_through_the_report(tmp_path: Path) -> None:
    from tests.pipeline_repo import make_pipeline_repo, run

    repo = tmp_path / "repo"
    overrides = {
        "phantom": {"generate": []},
        "data": {"format": "folder", "raw_dir": "data/raw/folder", "image_size": 32, "test_size": 4},
        "gan": {"seeds": [0]},
        "seg": {"seeds": [0]},
    }
    small_folder(repo / "data" / "raw" / "folder", count=12)
    make_pipeline_repo(repo, overrides)
    result = run(["dvc", "repro"], repo)
    assert "Running stage 'report'" in result.stdout
    data = yaml.safe_load((repo / "metrics" / "data.json").read_text())
    assert data["format"] == "folder" and data["positives"] == 12 and data["negatives"] == 1
    assert (repo / "metrics" / "report" / "summary.json").is_file()
    # A new image is a change of the raw folder: prepare reruns.
    cv2.imwrite(str(repo / "data" / "raw" / "folder" / "images" / "extra.png"), np.zeros((40, 40), np.uint8))
    status = run(["dvc", "status", "prepare"], repo)
    assert "changed deps" in status.stdout
