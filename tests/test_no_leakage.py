"""The validation images of each size never reach GAN training, the FID-loss statistics or synthesis (checked by
image id), and no FID term or synthesis batch is smaller than the batch size."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dfgan.core.params_file import load_params
from dfgan.core.paths import GanRunPaths, SynthRunPaths
from dfgan.core.settings import settings_from
from dfgan.data.prepared_arrays import load_prepared
from dfgan.gan import pairs as pairs_module
from dfgan.gan.config import GanConfig, GanRunOptions
from dfgan.gan.fid import FIDLoss, write_reference_stats
from dfgan.gan.generator import save_generator
from dfgan.gan.networks import build_generator
from dfgan.gan.synthesis import SynthesisConfig, synthesize
from dfgan.gan.training import train_gan
from tests.fakes import TinyExtractor, blob_xrays, save_fake_prepared

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
SIZE = 10  # pool of 10 with val_fraction 0.3: 3 validation, 7 training images (batch 4: one batch is refilled)


def id_of_pixel(value: np.ndarray) -> np.ndarray:
    """Images are stamped with 10 x their row in pixels (0, 0) and (0, -1); this rounds a read-back to the row."""
    return np.rint(value).astype(int)


@pytest.fixture(scope="module")
def stamped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("leak")
    images, masks = blob_xrays(SIZE + 3, 32, seed=2)
    masks[:, 0, 0] = masks[:, 0, -1] = 0
    images[:, 0, 0] = images[:, 0, -1] = np.arange(SIZE + 3) * 10  # row r -> pixel value 10 r (mirror-proof)
    prepared = save_fake_prepared(root / "prepared", images, masks, SIZE, [SIZE], seed=0, val_fraction=0.3)
    data = load_prepared(prepared)
    ids = data.index.set_index("row")["image_id"]
    return {
        "root": root,
        "prepared": prepared,
        "val_ids": {ids[int(r)] for r in data.val(SIZE).rows},
        "train_ids": {ids[int(r)] for r in data.train(SIZE).rows},
        "ids": ids,
    }


class RecordingExtractor(TinyExtractor):
    """TinyExtractor that records the image id stamped in every input it sees, and every batch size."""

    def __init__(self) -> None:
        super().__init__()
        self.seen_rows: list[int] = []
        self.batch_sizes: list[int] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pixel = (images[:, 0, 0, 0].detach().float() + 1.0) * 127.5 / 10.0
        self.seen_rows.extend(id_of_pixel(pixel.numpy()).tolist())
        self.batch_sizes.append(len(images))
        return super().forward(images)


def test_validation_images_never_reach_the_fid_statistics(stamped: dict[str, Any]) -> None:
    assert len(stamped["val_ids"]) == 3 and not stamped["val_ids"] & stamped["train_ids"]
    extractor = RecordingExtractor()
    write_reference_stats(stamped["prepared"], [SIZE], stamped["root"] / "stats", 4, CPU, include_test=False,
                          extractor=extractor, include_flips=True)
    seen = {stamped["ids"][r] for r in extractor.seen_rows}
    assert seen == stamped["train_ids"]
    with np.load(stamped["root"] / "stats" / f"train_{SIZE}.npz") as stats:
        assert len(stats["features"]) == 2 * len(stamped["train_ids"])  # plus the mirrored images (jitter_flip)


def test_gan_trains_on_training_rows_only_with_full_fid_batches(
    stamped: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = stamped["root"]
    extractor = RecordingExtractor()
    write_reference_stats(stamped["prepared"], [SIZE], root / "gstats", 4, CPU, include_test=False, extractor=extractor)
    fid_batches: list[int] = []
    original = FIDLoss.forward

    def recording_forward(self: FIDLoss, features: torch.Tensor) -> torch.Tensor:
        fid_batches.append(len(features))
        return original(self, features)

    monkeypatch.setattr(FIDLoss, "forward", recording_forward)
    targets_seen: list[int] = []
    original_pairs = pairs_module.unit_targets_and_masks

    def recording_pairs(images: np.ndarray, masks: np.ndarray, device: torch.device) -> Any:
        targets_seen.extend(id_of_pixel(np.asarray(images)[:, 0, 0] / 10.0).tolist())
        return original_pairs(images, masks, device)

    monkeypatch.setattr(pairs_module, "unit_targets_and_masks", recording_pairs)
    params = copy.deepcopy(load_params(REPO / "params.yaml"))
    params["data"]["image_size"] = 32
    params["gan"].update(ngf=8, ndf=8, batch_size=4, n_epochs=2, n_epochs_decay=1, checkpoint_every=9,
                         fid_eval_every=9, sample_count=2, device="cpu", lambda_fid=0.01, jitter_flip=False)
    settings = settings_from(params)
    metrics = train_gan(
        stamped["prepared"], SIZE, GanConfig.of(settings, "dfgan", 0), GanRunOptions.of(settings),
        GanRunPaths(root / "model", root / "ck.pt", root / "live", root / "m.json"),
        stats_path=root / "gstats" / f"train_{SIZE}.npz",
        extractor=extractor,
    )
    assert {stamped["ids"][r] for r in targets_seen} == stamped["train_ids"]
    assert metrics["train_images"] == 7 and metrics["steps"] == 3 * 2  # ceil(7 / 4) batches per epoch
    assert fid_batches and set(fid_batches) == {4}  # every FID term over a full batch, the refilled one too

    # Synthesis: sources are the training rows only, and G always runs on full batches.
    spec = {"image_size": 32, "in_channels": 1, "out_channels": 1, "ngf": 8, "norm": "batch", "dropout": 0.5,
            "mask_channel": False}
    generator = build_generator(32, 1, 8, dropout=0.5)
    save_generator(generator, spec, root / "gen")
    batch_sizes: list[int] = []
    original_forward = type(generator).forward

    def recording_generator(self: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        batch_sizes.append(len(x))
        return original_forward(self, x)

    monkeypatch.setattr(type(generator), "forward", recording_generator)
    write_reference_stats(stamped["prepared"], [SIZE], root / "sstats", 4, CPU, extractor=extractor)
    params["synth"]["device"] = "cpu"
    synthesize(stamped["prepared"], SIZE, "dfgan", 0, SynthesisConfig.of(settings_from(params)),
               SynthRunPaths(root / "gen", root / "synth", root / "s.json"), stats_dir=root / "sstats",
               extractor=extractor)
    with np.load(root / "synth" / "synthetic.npz") as arrays:
        sources = {stamped["ids"][int(r)] for r in np.concatenate([arrays["source_rows"], arrays["flipped_source_rows"]])}
        assert len(arrays["images"]) == 7
    assert sources == stamped["train_ids"]
    assert batch_sizes and set(batch_sizes) == {4}  # 7 images -> 4 + (3 padded to 4), for each of the two sets
