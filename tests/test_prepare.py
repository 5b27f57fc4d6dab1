"""The prepare stage on a small phantom tree: contents, splits, determinism, header forms and bad inputs."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from dfgan.core.params_file import load_params
from dfgan.core.validation import validate_params
from dfgan.data.dicom_io import read_dicom, write_dicom
from dfgan.data.phantom import generate_phantom
from dfgan.data.prepare_siim import prepare_dataset
from dfgan.data.prepared_arrays import load_prepared
from dfgan.data.prepared_writer import resize_mask
from dfgan.data.rle import code_reading, decode_union, mask_runs
from dfgan.data.siim import PrepareError, read_rle_table

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NATIVE = 256
COUNT, POSITIVES = 24, 18
OPTIONS: dict[str, Any] = dict(
    dicom_glob="dicom-images-train/**/*.dcm",
    rle_csv="train-rle.csv",
    image_size=64,
    test_size=6,
    sizes=[4, 8],
    seed=0,
    workers=1,
    missing_dicom="report",
    mask_threshold=0.25,
)


@pytest.fixture(scope="module")
def phantom_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("raw")
    with pytest.MonkeyPatch.context() as patch:  # module fixtures run before conftest's quiet environment
        patch.setenv("DFGAN_NO_PROGRESS", "1")
        generate_phantom(out, count=COUNT, positive_fraction=POSITIVES / COUNT, image_size=NATIVE, seed=3,
                         jpeg_fraction=0.3)
    return out


@pytest.fixture
def raw(phantom_tree: Path, tmp_path: Path) -> Path:
    """A private copy of the phantom tree that a test may damage."""
    return Path(shutil.copytree(phantom_tree, tmp_path / "raw"))


def run(raw_dir: Path, work: Path, **overrides: Any) -> dict[str, Any]:
    return prepare_dataset(raw_dir, work / "prepared", work / "metrics" / "data.json", **{**OPTIONS, **overrides})


def csv_lines(raw_dir: Path) -> list[str]:
    return (raw_dir / "train-rle.csv").read_text().splitlines()


def first_positive_line(raw_dir: Path) -> tuple[int, str, str]:
    """(1-based data row, ImageId, code) of the first positive row of the CSV."""
    for number, line in enumerate(csv_lines(raw_dir)[1:], start=1):
        image_id, code = (part.strip() for part in line.split(","))
        if code != "-1":
            return number, image_id, code
    raise AssertionError("no positive row")


def replace_code(raw_dir: Path, row: int, code: str) -> None:
    lines = csv_lines(raw_dir)
    image_id = lines[row].split(",")[0]
    lines[row] = f"{image_id}, {code}"
    (raw_dir / "train-rle.csv").write_text("\n".join(lines) + "\n")


def assert_nothing_written(work: Path) -> None:
    assert not (work / "prepared").exists()
    assert not (work / "metrics" / "data.json").exists()
    assert not list(work.glob("*.tmp")) and not list(work.rglob(".*.staging"))


def test_positives_are_prepared_with_nested_disjoint_splits(phantom_tree: Path, tmp_path: Path) -> None:
    metrics = run(phantom_tree, tmp_path, val_fraction=0.25)
    data = load_prepared(tmp_path / "prepared")
    assert data.images.shape == data.masks.shape == (POSITIVES, 64, 64)
    assert data.images.dtype == data.masks.dtype == np.uint8
    assert set(np.unique(data.masks)) == {0, 1} and all(m.any() for m in data.masks)
    assert list(data.index.columns) == ["row", "image_id", "dicom_path", "mask_fraction", "split", "train_rank"]

    test = set(data.test_rows.tolist())
    assert len(test) == 6 and data.sizes == [4, 8]
    # Each size's pool (nested prefixes of the training order) = its training rows + its validation rows.
    pool = data.index[data.index.split == "train"].sort_values("train_rank")
    for size, n_val in ((4, 1), (8, 2)):
        train, val = data.train(size).rows.tolist(), data.val(size).rows.tolist()
        assert len(val) == n_val and not set(train) & set(val)
        assert sorted(train + val) == sorted(pool.row.tolist()[:size])
        assert not test & set(train + val)
    assert len(pool) == POSITIVES - 6
    assert (data.index.loc[list(test), "train_rank"] == -1).all()

    assert metrics["dicom_files"] == metrics["images_in_csv"] == COUNT
    assert metrics["positives"] == metrics["kept"] == POSITIVES and metrics["negatives"] == COUNT - POSITIVES
    assert metrics["csv_rows"] == len(csv_lines(phantom_tree)) - 1
    assert metrics["skipped"] == {"negative": COUNT - POSITIVES, "missing_dicom": 0, "empty_mask": 0}
    assert metrics["splits"] == {
        "test": 6, "train_pool": POSITIVES - 6, "train": {"4": 3, "8": 6}, "val": {"4": 1, "8": 2}
    }
    assert metrics["rle_mode"] == "relative" and metrics["image_size"] == 64
    assert (tmp_path / "metrics" / "data.json").is_file()


def test_arrays_are_the_resized_dicom_and_decoded_union(phantom_tree: Path, tmp_path: Path) -> None:
    run(phantom_tree, tmp_path)
    data = load_prepared(tmp_path / "prepared")
    table = read_rle_table(phantom_tree / "train-rle.csv")
    for k in (0, POSITIVES - 1):
        entry = data.index.iloc[k]
        native = read_dicom(phantom_tree / entry.dicom_path)
        expected = cv2.resize(native, (64, 64), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(data.images[k], expected)
        codes = table.loc[table.ImageId == entry.image_id, "EncodedPixels"]
        mask = decode_union(codes, NATIVE, NATIVE, entry.image_id)
        np.testing.assert_array_equal(data.masks[k], resize_mask(mask, 64, 0.25))
        assert entry.mask_fraction == pytest.approx(mask.mean(), abs=1e-7)


def test_index_paths_are_relative_to_the_raw_dir(
    phantom_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(phantom_tree.resolve(), tmp_path / "absolute")
    monkeypatch.chdir(phantom_tree.parent)
    run(Path(phantom_tree.name), tmp_path / "relative")
    index = (tmp_path / "absolute/prepared/index.csv").read_bytes()
    assert index == (tmp_path / "relative/prepared/index.csv").read_bytes()
    paths = load_prepared(tmp_path / "absolute/prepared").index.dicom_path
    assert all(p.startswith("dicom-images-train/") and (phantom_tree / p).is_file() for p in paths)


def test_deterministic_and_independent_of_workers(phantom_tree: Path, tmp_path: Path) -> None:
    run(phantom_tree, tmp_path / "a", workers=1)
    run(phantom_tree, tmp_path / "b", workers=2)
    for name in ("images.npy", "masks.npy", "index.csv", "splits.json"):
        assert (tmp_path / "a/prepared" / name).read_bytes() == (tmp_path / "b/prepared" / name).read_bytes(), name
    run(phantom_tree, tmp_path / "c", seed=1)
    a, c = load_prepared(tmp_path / "a/prepared"), load_prepared(tmp_path / "c/prepared")
    np.testing.assert_array_equal(a.images, c.images)  # rows are ordered by ImageId, whatever the seed
    assert a.train_rows[8].tolist() != c.train_rows[8].tolist()
    with pytest.raises(PrepareError, match="val_fraction"):
        run(phantom_tree, tmp_path / "d", val_fraction=1.0)


def test_stage_2_header_form_gives_the_same_result(raw: Path, tmp_path: Path) -> None:
    run(raw, tmp_path / "stage1")
    lines = csv_lines(raw)
    stage2 = ["ImageId,EncodedPixels"] + [",".join(p.strip() for p in line.split(",")) for line in lines[1:]]
    (raw / "stage_2_train.csv").write_text("\n".join(stage2) + "\n")
    run(raw, tmp_path / "stage2", rle_csv="stage_2_train.csv")
    for name in ("images.npy", "masks.npy", "splits.json"):
        assert (tmp_path / "stage1/prepared" / name).read_bytes() == (tmp_path / "stage2/prepared" / name).read_bytes()


def test_absolute_codes_are_recognised(raw: Path, tmp_path: Path) -> None:
    run(raw, tmp_path / "relative")
    # rewrite every multi-run positive code with absolute starts (as some tools write them): same masks
    lines = csv_lines(raw)
    for number, line in enumerate(lines[1:], start=1):
        image_id, code = (part.strip() for part in line.split(","))
        if code != "-1":
            mask = decode_union([code], NATIVE, NATIVE, image_id)
            starts, lengths = mask_runs(mask)
            lines[number] = f"{image_id}, " + " ".join(f"{s} {n}" for s, n in zip(starts, lengths))
    (raw / "train-rle.csv").write_text("\n".join(lines) + "\n")
    metrics = run(raw, tmp_path / "absolute")
    assert metrics["rle_mode"] == "absolute"
    a, b = (np.load(tmp_path / d / "prepared/masks.npy") for d in ("relative", "absolute"))
    np.testing.assert_array_equal(a, b)


def test_a_table_mixing_relative_and_absolute_only_rows_is_refused(raw: Path, tmp_path: Path) -> None:
    lines = csv_lines(raw)
    readings = []
    absolute_only = None
    for number, line in enumerate(lines[1:], start=1):
        image_id, code = (part.strip() for part in line.split(","))
        if code == "-1":
            continue
        readings.append(code_reading(code, NATIVE * NATIVE))
        starts, lengths = mask_runs(decode_union([code], NATIVE, NATIVE, image_id))
        if absolute_only is None and starts.sum() + lengths.sum() > NATIVE * NATIVE:  # cannot be read as relative
            lines[number] = f"{image_id}, " + " ".join(f"{s} {n}" for s, n in zip(starts, lengths))
            absolute_only = (number, image_id)
    assert absolute_only is not None and readings.count("relative") >= 2  # the other rows stay relative-only
    (raw / "train-rle.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(PrepareError, match=f"CSV row {absolute_only[0]} ImageId {absolute_only[1]} only fits as abs"):
        run(raw, tmp_path)
    assert_nothing_written(tmp_path)


def test_odd_rle_tokens_name_the_row_and_write_nothing(raw: Path, tmp_path: Path) -> None:
    row, image_id, code = first_positive_line(raw)
    replace_code(raw, row, code + " 7")
    with pytest.raises(PrepareError) as error:
        run(raw, tmp_path)
    message = str(error.value)
    assert "train-rle.csv" in message and f"CSV row {row}" in message and image_id in message
    assert "odd number of tokens" in message
    assert_nothing_written(tmp_path)


def test_rle_past_the_image_names_the_row_and_writes_nothing(raw: Path, tmp_path: Path) -> None:
    row, image_id, _ = first_positive_line(raw)
    replace_code(raw, row, f"{NATIVE * NATIVE - 10} 50")
    with pytest.raises(PrepareError, match=f"ImageId {image_id} \\(CSV row {row}\\).*past H\\*W = {NATIVE * NATIVE}"):
        run(raw, tmp_path)
    assert_nothing_written(tmp_path)


def test_missing_csv_columns_name_the_file(raw: Path, tmp_path: Path) -> None:
    lines = csv_lines(raw)
    (raw / "train-rle.csv").write_text("\n".join(["ImageId, Pixels"] + lines[1:]) + "\n")
    with pytest.raises(PrepareError, match="train-rle.csv: missing column\\(s\\) \\['EncodedPixels'\\]"):
        run(raw, tmp_path)
    assert_nothing_written(tmp_path)


def test_missing_csv_file_is_named(raw: Path, tmp_path: Path) -> None:
    with pytest.raises(PrepareError, match="nope.csv: RLE CSV not found"):
        run(raw, tmp_path, rle_csv="nope.csv")
    assert_nothing_written(tmp_path)


def test_missing_dicom_is_reported_or_refused(raw: Path, tmp_path: Path) -> None:
    row, image_id, _ = first_positive_line(raw)
    next(raw.glob(f"dicom-images-train/*/*/{image_id}.dcm")).unlink()

    with pytest.raises(PrepareError) as error:
        run(raw, tmp_path / "strict", missing_dicom="error")
    assert f"CSV row {row} ImageId {image_id} has no DICOM" in str(error.value)
    assert_nothing_written(tmp_path / "strict")

    metrics = run(raw, tmp_path / "lenient", missing_dicom="report")
    assert metrics["kept"] == POSITIVES - 1 and metrics["skipped"]["missing_dicom"] == 1
    assert metrics["missing_dicom_ids"] == [image_id] and metrics["dicom_files"] == COUNT - 1
    assert image_id not in load_prepared(tmp_path / "lenient/prepared").index.image_id.tolist()


def test_unreadable_dicom_names_the_file(raw: Path, tmp_path: Path) -> None:
    _, image_id, _ = first_positive_line(raw)
    path = next(raw.glob(f"dicom-images-train/*/*/{image_id}.dcm"))
    path.write_bytes(b"not a dicom" * 50)
    with pytest.raises(PrepareError, match=f"{image_id}.dcm: not a readable DICOM"):
        run(raw, tmp_path)
    assert_nothing_written(tmp_path)


def test_sizes_larger_than_the_positives_are_refused(phantom_tree: Path, tmp_path: Path) -> None:
    with pytest.raises(PrepareError, match=f"sizes \\[4, 100\\].*6 = 106.*only {POSITIVES}"):
        run(phantom_tree, tmp_path, sizes=[100, 4])
    assert_nothing_written(tmp_path)


def test_unknown_missing_dicom_policy_is_refused() -> None:
    """By the params check, once, before any stage: the library trusts the settings it is handed."""
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    params["data"]["missing_dicom"] = "ignore"
    assert "params.yaml: data.missing_dicom: must be one of report, error, got the text 'ignore'" in validate_params(params)


def test_a_failed_run_leaves_an_earlier_output_intact(raw: Path, tmp_path: Path) -> None:
    run(raw, tmp_path)
    before = (tmp_path / "prepared" / "splits.json").read_text()
    row, _, code = first_positive_line(raw)
    replace_code(raw, row, code + " 7")
    with pytest.raises(PrepareError):
        run(raw, tmp_path)
    assert (tmp_path / "prepared" / "splits.json").read_text() == before


def test_thin_masks_survive_resizing_and_stay_binary() -> None:
    mask = np.zeros((1024, 1024), np.uint8)
    mask[100:900, 500] = 1  # one pixel wide: 1/16 coverage per 64-px cell
    small = resize_mask(mask, 64, 0.25)
    assert small.any() and set(np.unique(small)) <= {0, 1}
    assert resize_mask(np.zeros((1024, 1024), np.uint8), 64, 0.25).sum() == 0
    blob = np.zeros((1024, 1024), np.uint8)
    blob[0:512, 0:512] = 1
    assert resize_mask(blob, 64, 0.25).sum() == 32 * 32


def test_stage_entry_points_run_from_a_params_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stages import phantom as phantom_stage
    from stages import prepare as prepare_stage

    params = yaml.safe_load(Path(__file__).resolve().parents[1].joinpath("params.yaml").read_text())
    params["sizes"] = [4, 8]
    params["phantom"].update(count=20, image_size=128, workers=1, contact_sheet=4)
    params["data"].update(test_size=4, workers=1, image_size=32)
    params["gan"]["batch_size"] = 2  # the params check: a GAN batch must fit the smallest size's training images
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    stale = Path(params["phantom"]["out_dir"]) / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("left over")
    phantom_stage.main(["--params", "p.yaml"])
    assert not stale.exists() and Path("data/raw/phantom_contact_sheet.png").is_file()
    prepare_stage.main(["--params", "p.yaml"])
    data = load_prepared("data/prepared")
    assert data.images.shape[1:] == (32, 32) and data.sizes == [4, 8]
    assert Path("metrics/data.json").is_file()


# ----------------------------------------------------------------------------------------------------------------
# Inputs that used to pass silently or leave things behind


def shrink_dicoms(raw_dir: Path, size: int) -> None:
    """Rewrite every DICOM at ``size`` x ``size`` (same ImageId), as a user who downsampled them but kept the CSV."""
    for path in raw_dir.glob("dicom-images-train/*/*/*.dcm"):
        small = cv2.resize(read_dicom(path), (size, size), interpolation=cv2.INTER_AREA)
        write_dicom(path, small, path.stem, path.parent.parent.name, path.parent.name)


@pytest.mark.slow
def test_codes_written_for_a_larger_grid_are_detected_and_decoded_with_rle_grid(raw: Path, tmp_path: Path) -> None:
    run(raw, tmp_path / "native")
    shrink_dicoms(raw, NATIVE // 2)
    with pytest.raises(PrepareError) as error:
        run(raw, tmp_path / "shrunk")
    message = str(error.value)
    assert message.startswith(f"{raw / 'train-rle.csv'}: ImageId ") and "CSV row" in message
    assert f"past H*W = {(NATIVE // 2) ** 2} of the {NATIVE // 2}x{NATIVE // 2} DICOM" in message
    assert "relative runs end at pixel" in message and "written for a larger grid" in message
    assert f"data.rle_grid to that grid, e.g. {NATIVE}x{NATIVE}" in message
    assert_nothing_written(tmp_path / "shrunk")
    # Decoded on the codes' grid and resized with the mask rule: exactly the masks of the full-size tree.
    metrics = run(raw, tmp_path / "grid", rle_grid=f"{NATIVE}x{NATIVE}")
    assert metrics["rle_grid"] == f"{NATIVE}x{NATIVE}" and metrics["kept"] == POSITIVES
    native, grid = (np.load(tmp_path / d / "prepared/masks.npy") for d in ("native", "grid"))
    np.testing.assert_array_equal(native, grid)


def test_rle_grid_of_another_aspect_ratio_names_the_dicom(raw: Path, tmp_path: Path) -> None:
    with pytest.raises(PrepareError, match=f"is {NATIVE}x{NATIVE} but data.rle_grid is 512x1024, another aspect"):
        run(raw, tmp_path, rle_grid="512x1024")
    assert_nothing_written(tmp_path)


def test_duplicate_rows_are_dropped_and_counted(raw: Path, tmp_path: Path) -> None:
    before = run(raw, tmp_path / "clean")
    lines = csv_lines(raw)
    row, _, _ = first_positive_line(raw)
    negative = next(line for line in lines[1:] if line.endswith("-1"))
    (raw / "train-rle.csv").write_text("\n".join(lines + [lines[row], lines[row], negative]) + "\n")
    after = run(raw, tmp_path / "duplicated")
    assert before["csv_duplicate_rows"] == 0 and after["csv_duplicate_rows"] == 3
    assert after["regions_per_image"] == before["regions_per_image"]
    assert after["csv_rows"] == before["csv_rows"] + 3 and after["kept"] == before["kept"]
    for name in ("images.npy", "masks.npy", "splits.json"):
        assert (tmp_path / "clean/prepared" / name).read_bytes() == (tmp_path / "duplicated/prepared" / name).read_bytes()


def test_truncated_compressed_dicom_is_named_as_truncated(raw: Path, tmp_path: Path) -> None:
    positives = {line.split(",")[0] for line in csv_lines(raw)[1:] if not line.endswith("-1")}
    compressed = [p for p in raw.glob("dicom-images-train/*/*/*.dcm") if p.stem in positives
                  and b"1.2.840.10008.1.2.4.50" in p.read_bytes()[:400]]  # JPEG baseline transfer syntax
    assert compressed
    data = compressed[0].read_bytes()
    compressed[0].write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(PrepareError, match=f"{compressed[0].name}: DICOM file is truncated"):
        run(raw, tmp_path)
    assert_nothing_written(tmp_path)


def test_a_stale_staging_directory_is_removed_and_git_ignored(phantom_tree: Path, tmp_path: Path) -> None:
    for leftover in (tmp_path / ".prepared.staging", tmp_path / "prepared.tmp"):
        leftover.mkdir()
        (leftover / "images.npy").write_bytes(b"half-written")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / ".data.json.staging").write_text("{")
    run(phantom_tree, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics", "prepared"]
    assert [p.name for p in (tmp_path / "metrics").iterdir()] == ["data.json"]
    ignored = subprocess.run(
        ["git", "check-ignore", "data/.prepared.staging/images.npy", "metrics/.data.json.staging"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert ignored.stdout.split() == ["data/.prepared.staging/images.npy", "metrics/.data.json.staging"]


KILLED_WHILE_WRITING = """
import sys, time
from pathlib import Path
import dfgan.data.prepared_writer as writer
from dfgan.data.prepare_siim import prepare_dataset

def write_then_hang(directory, images, *rest):
    Path(directory).mkdir(parents=True)
    (Path(directory) / "images.npy").write_bytes(b"half")
    time.sleep(120)

writer.save_prepared = write_then_hang
prepare_dataset(sys.argv[1], sys.argv[2] + "/prepared", sys.argv[2] + "/metrics/data.json",
                dicom_glob="dicom-images-train/**/*.dcm", rle_csv="train-rle.csv", image_size=64,
                test_size=6, sizes=[4, 8], seed=0, workers=1, missing_dicom="report")
"""


@pytest.mark.slow
def test_kill_9_while_writing_leaves_nothing_that_survives_the_rerun(phantom_tree: Path, tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", KILLED_WHILE_WRITING, str(phantom_tree), str(tmp_path)],
                               cwd=PROJECT_ROOT)
    staging = tmp_path / ".prepared.staging" / "images.npy"
    deadline = time.monotonic() + 60
    while not staging.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert staging.exists() and not (tmp_path / "prepared").exists()  # what a kill -9 leaves: only the hidden copy
    run(phantom_tree, tmp_path)
    assert not staging.parent.exists() and load_prepared(tmp_path / "prepared").images.shape[0] == POSITIVES
