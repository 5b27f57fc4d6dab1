"""The procedural phantom: SIIM-ACR stage-1 format, determinism, and realistic mask statistics."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from dfgan.data.dicom_io import read_dicom
from dfgan.data.phantom import CSV_HEADER, generate_phantom, render_contact_sheet
from dfgan.data.phantom_render import REAL_MASK_STATS, render_phantom, sample_crescents
from dfgan.data.rle import decode_union, rle_decode

SIZE = 256


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("phantom")
    with pytest.MonkeyPatch.context() as patch:  # module fixtures run before conftest's quiet environment
        patch.setenv("DFGAN_NO_PROGRESS", "1")
        summary = generate_phantom(out, count=12, positive_fraction=0.75, image_size=SIZE, seed=5, jpeg_fraction=0.5)
    return out, summary


def test_layout_is_siim_stage_1(tree: tuple[Path, dict]) -> None:
    out, summary = tree
    files = sorted(out.glob("dicom-images-train/*/*/*.dcm"))
    assert len(files) == 12 == summary["images"]
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        study, series = path.parent.parent.name, path.parent.name
        assert path.stem == ds.SOPInstanceUID and study == ds.StudyInstanceUID and series == ds.SeriesInstanceUID
        assert ds.Rows == ds.Columns == SIZE and ds.PhotometricInterpretation == "MONOCHROME2"
    syntaxes = {str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID) for p in files}
    assert syntaxes == {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.50"}  # some JPEG-baseline, some not
    assert summary["jpeg_compressed"] > 0


def test_csv_has_the_stage_1_quirks(tree: tuple[Path, dict]) -> None:
    out, summary = tree
    lines = (out / "train-rle.csv").read_text().splitlines()
    assert lines[0] == CSV_HEADER == "ImageId, EncodedPixels"
    pattern = re.compile(r"^[0-9.]+, (-1|\d+( \d+)*)$")
    assert all(pattern.match(line) for line in lines[1:]), [l for l in lines[1:] if not pattern.match(l)][:2]
    table = pd.read_csv(out / "train-rle.csv")
    assert list(table.columns) == ["ImageId", " EncodedPixels"]  # what pandas sees in the real file
    rows_per_image = table.groupby("ImageId").size()
    negatives = table[table[" EncodedPixels"] == " -1"]
    assert negatives["ImageId"].is_unique and (rows_per_image[negatives["ImageId"]] == 1).all()
    assert len(rows_per_image) == 12 and summary["negatives"] == len(negatives) == 3
    assert len(table) == summary["csv_rows"] >= summary["images"]  # one row per region, one per negative


def test_each_row_is_one_region_and_decodes_inside_the_lungs(tree: tuple[Path, dict]) -> None:
    out, _ = tree
    table = pd.read_csv(out / "train-rle.csv", skipinitialspace=True)
    dicoms = {p.stem: p for p in out.glob("dicom-images-train/**/*.dcm")}
    for image_id, rows in table.groupby("ImageId"):
        codes = [c for c in rows["EncodedPixels"] if c != "-1"]
        masks = [rle_decode(c, SIZE, SIZE, image_id) for c in codes]
        assert all(m.any() for m in masks)
        for i in range(len(masks)):
            for j in range(i + 1, len(masks)):
                assert not (masks[i] & masks[j]).any()  # separate regions, separate rows
        if masks:
            image = read_dicom(dicoms[image_id])
            union = decode_union(codes, SIZE, SIZE, image_id)
            # a pneumothorax lies in a lung field: darker than the body around it
            assert image[union > 0].mean() < image.mean()


def test_same_seed_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    kwargs = dict(count=4, positive_fraction=0.5, image_size=128, seed=11, jpeg_fraction=0.5)
    generate_phantom(tmp_path / "a", workers=1, **kwargs)
    generate_phantom(tmp_path / "b", workers=2, **kwargs)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 5
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    generate_phantom(tmp_path / "c", workers=1, **{**kwargs, "seed": 12})
    assert (tmp_path / "c" / "train-rle.csv").read_text() != (tmp_path / "a" / "train-rle.csv").read_text()


def test_render_is_deterministic_and_negative_has_no_regions() -> None:
    a = render_phantom(128, np.random.default_rng(3), positive=True)
    b = render_phantom(128, np.random.default_rng(3), positive=True)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    negative = render_phantom(128, np.random.default_rng(3), positive=False)
    assert negative.regions == [] and negative.mask.sum() == 0


def test_pneumothorax_is_darker_than_the_lung_beside_it() -> None:
    comparisons = []
    for seed in range(6):
        phantom = render_phantom(SIZE, np.random.default_rng(100 + seed), positive=True)
        image = phantom.image.astype(float)
        for region in phantom.regions:
            assert not (region & (1 - phantom.lung_fields)).any()  # inside the visible lung fields
            ys, xs = np.nonzero(region)
            nearby = np.zeros_like(region)
            nearby[max(ys.min() - 15, 0) : ys.max() + 15, max(xs.min() - 15, 0) : xs.max() + 15] = 1
            lung_beside = (nearby & phantom.lung_fields & (1 - region)).astype(bool)
            comparisons.append(image[region > 0].mean() < image[lung_beside].mean())
    assert np.mean(comparisons) >= 0.8, comparisons


def test_mask_statistics_follow_the_real_ones(tmp_path: Path) -> None:
    summary = generate_phantom(tmp_path, count=30, positive_fraction=1.0, image_size=SIZE, seed=2019, workers=2)
    print("\nphantom mask statistics (30 images):", {k: v for k, v in summary.items() if k != "real"})
    area = summary["area_fraction"]
    assert 0.0003 < area["p5"] < 0.004
    assert 0.003 < area["median"] < 0.025
    assert 0.01 < area["p95"] < 0.12
    assert summary["regions"]["1"] >= 0.5
    assert 0.12 < summary["centroid_y_median"] < 0.40
    assert 0.3 <= summary["left_half"] <= 0.85
    assert summary["positives"] == 30 and summary["csv_rows"] >= 30


def test_region_sampler_matches_the_real_distribution_over_many_draws() -> None:
    rng = np.random.default_rng(0)
    draws = [sample_crescents(rng) for _ in range(4000)]
    counts = np.array([len(d) for d in draws])
    areas = np.array([sum(c.area_fraction for c in d) for d in draws])
    assert abs(np.mean(counts == 1) - REAL_MASK_STATS["regions"]["1"]) < 0.03
    assert abs(np.mean(counts == 2) - REAL_MASK_STATS["regions"]["2"]) < 0.03
    for name, q in (("p5", 5), ("median", 50), ("p95", 95)):
        ratio = np.percentile(areas, q) / REAL_MASK_STATS["area_fraction"][name]
        assert 0.75 < ratio < 1.33, (name, ratio)
    lungs = np.array([d[0].lung for d in draws])
    assert 0.5 < np.mean(lungs == 0) < 0.7  # the first region favours the patient's right (image left)


def test_contact_sheet_reads_back_through_the_real_reader(tree: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = tree
    png = render_contact_sheet(out, tmp_path / "sheet.png", 6, columns=3, tile=96)
    import cv2

    sheet = cv2.imread(str(png))
    assert sheet.shape[:2] == (2 * 98, 3 * 98)
    assert (sheet[..., 2] > sheet[..., 1] + 80).any()  # red mask outlines were drawn


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="count"):
        generate_phantom(tmp_path, count=0, positive_fraction=0.5, image_size=64, seed=0)


def test_generation_speed_at_1024() -> None:
    render_phantom(256, np.random.default_rng(0), positive=True)  # warm-up (first cv2 calls)
    start = time.perf_counter()
    for seed in range(2):
        render_phantom(1024, np.random.default_rng(seed), positive=True)
    print(f"\n1024x1024 phantom: {(time.perf_counter() - start) / 2:.2f} s per image")
