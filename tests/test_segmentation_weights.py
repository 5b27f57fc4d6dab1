"""seg.encoder_weights_path: the U-Net++ encoder's pretrained weights from a file on disk, for machines without
network (dfgan.seg.encoder_weights). Small resnet18 U-Net++s on the CPU; nothing is downloaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import segmentation_models_pytorch as smp
import torch
import torchvision
import yaml
from safetensors.torch import save_file

from dfgan.core.errors import InputError
from dfgan.core.validation import problems_in
from dfgan.seg.model import build_model, build_training_model
from tests.pipeline_repo import PROJECT_ROOT

DECODER = [32, 16, 8, 8, 4]


def small_model(seed: int, **options) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("resnet18", options.pop("encoder_weights", None), decoder_channels=DECODER, **options)


def save(state: dict[str, torch.Tensor], path: Path) -> Path:
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


def rgb_encoder_state(seed: int) -> dict[str, torch.Tensor]:
    """A 3-channel resnet18 encoder, as smp downloads it (random weights standing in for ImageNet's)."""
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in smp.encoders.get_encoder("resnet18", in_channels=3).state_dict().items()}


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_the_models_own_encoder_state_loads_exactly(tmp_path: Path, suffix: str) -> None:
    source = small_model(seed=1)
    state = {k: v.clone() for k, v in source.encoder.state_dict().items()}
    path = save(state, tmp_path / f"encoder{suffix}")
    with torch.no_grad():  # the source changes after saving: the file is what must come back
        for parameter in source.encoder.parameters():
            parameter.add_(1.0)

    loaded = small_model(seed=0, encoder_weights_path=path)
    assert loaded.encoder.conv1.weight.shape == (64, 1, 7, 7)
    for key, value in loaded.encoder.state_dict().items():
        assert torch.equal(value, state[key]), key
    # Without the file the same seed gives other encoder weights, and the decoder is the seed's own either way.
    plain = small_model(seed=0)
    assert not torch.equal(plain.encoder.conv1.weight, loaded.encoder.conv1.weight)
    for key, value in plain.decoder.state_dict().items():
        assert torch.equal(value, loaded.decoder.state_dict()[key]), key


@pytest.mark.parametrize("old_file", [False, True])
def test_a_torchvision_resnet_file_is_adapted_to_one_channel(tmp_path: Path, old_file: bool) -> None:
    # torchvision's resnet files hold the classifier too (fc.*, which smp's ResNet encoders drop when loading);
    # the oldest have no BatchNorm num_batches_tracked entries.
    torch.manual_seed(3)
    state = torchvision.models.resnet18(weights=None).state_dict()
    if old_file:
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = save(dict(state), tmp_path / "resnet18-torchvision.pth")
    model = small_model(seed=0, encoder_weights="imagenet", encoder_weights_path=path)
    assert torch.equal(model.encoder.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))  # smp's 1-channel rule
    for key, value in model.encoder.state_dict().items():
        if key != "conv1.weight" and key in state:
            assert torch.equal(value, state[key]), key
    assert model.eval()(torch.zeros(1, 1, 64, 64)).shape == (1, 1, 64, 64)


SMP_FROM_CACHE = """
import sys, torch, segmentation_models_pytorch as smp
torch.manual_seed(0)
model = smp.UnetPlusPlus("resnet18", encoder_weights="imagenet", in_channels=1, classes=1,
                         decoder_channels=(32, 16, 8, 8, 4))
torch.save({"state": model.state_dict(), "next_draw": torch.rand(4)}, sys.argv[1])
"""


@pytest.mark.slow  # over 5 s: outside the fast tier
def test_the_file_gives_the_model_that_smp_builds_from_a_prefilled_hub_cache(tmp_path: Path) -> None:
    # The documented alternative: the Hugging Face cache layout smp 0.6 reads (HF_HUB_CACHE, HF_HUB_OFFLINE=1).
    state = rgb_encoder_state(seed=5)
    settings = smp.encoders.encoders["resnet18"]["pretrained_settings"]["imagenet"]
    repo = tmp_path / "hub" / ("models--" + settings["repo_id"].replace("/", "--"))
    snapshot = repo / "snapshots" / settings["revision"]
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}))
    save(state, snapshot / "model.safetensors")
    out = tmp_path / "smp_model.pt"
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-c", SMP_FROM_CACHE, str(out)], env=env, check=True, cwd=PROJECT_ROOT)
    from_hub = torch.load(out, weights_only=True)

    torch.manual_seed(0)
    model = build_model("resnet18", "imagenet", decoder_channels=DECODER,
                        encoder_weights_path=snapshot / "model.safetensors")
    next_draw = torch.rand(4)
    ours = model.state_dict()
    assert ours.keys() == from_hub["state"].keys()
    for key, value in from_hub["state"].items():
        assert torch.equal(ours[key], value), key  # encoder and decoder alike, bit for bit
    assert torch.equal(next_draw, from_hub["next_draw"])  # and the run's random stream goes on the same


def test_a_file_of_another_encoder_stops_with_the_file_and_the_first_keys(tmp_path: Path) -> None:
    torch.manual_seed(0)
    other = smp.encoders.get_encoder("mobilenet_v2", in_channels=3).state_dict()
    path = save(dict(other), tmp_path / "mobilenet_v2.pth")
    with pytest.raises(InputError) as error:
        small_model(seed=0, encoder_weights_path=path)
    message = str(error.value)
    assert message.startswith(f"seg.encoder_weights_path: {path} does not fit")
    # The first few keys of each kind, and how many there are.
    assert "missing (conv1.weight, bn1.weight, bn1.bias, ...)" in message
    assert "unexpected (features.0.0.weight, features.0.1.weight, features.0.1.bias, ...)" in message
    assert "encoder (seg.encoder), with 3 input channels or 1" in message
    assert len(message) < 600


def test_a_wrong_first_convolution_names_the_key_and_both_shapes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    two_channel = build_model("resnet18", None, in_channels=2, decoder_channels=DECODER).encoder.state_dict()
    path = save(dict(two_channel), tmp_path / "two_channels.pth")
    with pytest.raises(InputError, match=r"keys 1 of another shape \(conv1\.weight: \[64, 2, 7, 7\] in the file, "
                                         r"\[64, 1, 7, 7\] in the model\)"):
        small_model(seed=0, encoder_weights_path=path)


def test_a_missing_or_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="seg.encoder_weights_path: no file at .*nowhere.pth"):
        small_model(seed=0, encoder_weights_path=tmp_path / "nowhere.pth")
    (tmp_path / "notes.pth").write_text("not a tensor file")
    with pytest.raises(InputError, match="seg.encoder_weights_path: cannot read .*notes.pth"):
        small_model(seed=0, encoder_weights_path=tmp_path / "notes.pth")
    torch.save({"epoch": 3}, tmp_path / "scalar.pth")
    with pytest.raises(InputError, match="scalar.pth is not a state dict"):
        small_model(seed=0, encoder_weights_path=tmp_path / "scalar.pth")


@pytest.mark.parametrize("name", ["params.yaml", "params_evidence.yaml", "params_paper.yaml"])
def test_every_profile_has_the_key_and_dvc_tracks_it(name: str) -> None:
    params = yaml.safe_load((PROJECT_ROOT / name).read_text())
    assert params["seg"]["encoder_weights_path"] is None
    params["seg"]["encoder_weights_path"] = "weights/resnet34.imagenet.safetensors"
    assert not [p for p in problems_in(params) if p[0].startswith("seg.encoder_weights")]
    params["seg"]["encoder_weights_path"] = 3
    assert [p for p in problems_in(params) if p[0] == "seg.encoder_weights_path"]
    stages = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"]
    for stage in ("seg_real", "seg_synth", "seg_synth2x"):
        assert "seg.encoder_weights_path" in stages[stage]["params"], stage


def test_the_training_model_takes_the_file_named_in_the_seg_settings(tmp_path: Path) -> None:
    """seg.encoder_weights_path reaches the model a seg stage trains (not only build_model)."""
    from tests.test_segmentation import tiny_seg

    state = {k: v.clone() for k, v in small_model(seed=1).encoder.state_dict().items()}
    path = save(state, tmp_path / "encoder.safetensors")
    torch.manual_seed(0)
    model = build_training_model(tiny_seg("none", encoder_weights_path=str(path)), torch.device("cpu"))
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, state[key]), key
