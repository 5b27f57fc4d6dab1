"""The phantom and its prepared arrays are the same bytes whatever vector instructions the CPU offers (issue 27).

A phantom of the default run's image size (3 images of 1024 px, some JPEG-compressed) is written, drawn as a
contact sheet and prepared (DICOM decode, 1024 -> 64 area resize of images and masks, as the default run) in three
subprocesses at once: every code path on; the AVX-512 groups off; AVX-512, AVX2, FMA and AVX off (and one OpenCV
thread). The switches are those of glibc (its libm picks FMA variants of exp, log, pow, sin, atan2), numpy (its
SIMD loops; numpy 2.4 dispatches to feature groups, ``X86_V3`` = AVX2 + FMA and ``X86_V4`` = AVX-512, and ignores
the single names older versions took, so both are given), OpenCV (its dispatched kernels, and the CPU level of the
Intel IPP it calls), OpenBLAS (numpy's matrix products; Haswell = AVX2 kernels, Nehalem = SSE) and libjpeg-turbo
(Pillow's JPEG codec). They only matter for paths the CPU has: on a CPU without AVX-512 the first two runs take the
same paths. Before the fix, the third run rendered 1 to 19 pixels of each 1024 px image one grey level off on an
AVX2 machine (all 3 DICOMs and the contact sheet differed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SWITCHES = ("GLIBC_TUNABLES", "NPY_DISABLE_CPU_FEATURES", "OPENCV_CPU_DISABLE", "OPENCV_IPP", "JSIMD_FORCENONE",
            "OPENBLAS_CORETYPE", "OPENCV_FOR_THREADS_NUM")
NO_AVX512 = {
    "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL",
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX X86_V4 AVX512_ICL AVX512_SPR",
    "OPENCV_CPU_DISABLE": "AVX512_SKX,AVX512_COMMON",
    "OPENCV_IPP": "avx2",
    "OPENBLAS_CORETYPE": "Haswell",
}
NO_AVX2 = {
    "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL,-AVX2,-FMA,-FMA4",
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX2 FMA3 F16C AVX X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
    "OPENCV_CPU_DISABLE": "AVX512_SKX,AVX512_COMMON,AVX2,FMA3,AVX,FP16",
    "OPENCV_IPP": "sse42",
    "JSIMD_FORCENONE": "1",
    "OPENBLAS_CORETYPE": "Nehalem",
    "OPENCV_FOR_THREADS_NUM": "1",  # and one OpenCV thread instead of one per core: no split-dependent sums either
}
SETTINGS = {"all paths on": {}, "AVX-512 off": NO_AVX512, "AVX2/FMA/AVX off": NO_AVX2}

# Run in each subprocess with the output folder as argv[1]: print the md5 of every file written, and which vector
# paths numpy and OpenCV report as usable (to show that the switches took effect).
RUN = r"""
import hashlib, json, sys
from pathlib import Path
import cv2
import numpy as np
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__ as npy
from dfgan.data.phantom import generate_phantom, render_contact_sheet
from dfgan.data.prepare_siim import prepare_dataset

out = Path(sys.argv[1])
tree = out / "raw"
summary = generate_phantom(tree, count=3, positive_fraction=0.67, image_size=1024, seed=2019, jpeg_fraction=0.5)
render_contact_sheet(tree, out / "sheet.png", 3)
prepare_dataset(tree, out / "prepared", out / "data.json", dicom_glob="dicom-images-train/**/*.dcm",
                rle_csv="train-rle.csv", image_size=64, test_size=1, sizes=[1], seed=0, workers=1,
                missing_dicom="error")
files = {p.relative_to(out).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
         for p in sorted(out.rglob("*")) if p.is_file()}
opencv = [t.lstrip("*") for t in cv2.getCPUFeaturesLine().split() if not t.endswith("?")]  # "?": not usable
grouped = "X86_V3" in __cpu_dispatch__  # numpy >= 2.4 dispatches to groups (x86-64-v3: AVX2 + FMA, v4: AVX-512)
paths = {"numpy AVX2": bool(npy.get("X86_V3" if grouped else "AVX2")),
         "numpy AVX-512": bool(npy.get("X86_V4" if grouped else "AVX512F")),
         "opencv AVX2": "AVX2" in opencv, "opencv AVX512-SKX": "AVX512-SKX" in opencv,
         "IPP above SSE4.2": "SSE4.2" not in cv2.ipp.getIppVersion()}
print(json.dumps({"files": files, "paths": paths, "jpeg": summary["jpeg_compressed"]}))
"""


def run_all(tmp_path: Path) -> dict[str, dict]:
    """Start the three runs side by side; return each one's file hashes and vector paths."""
    base = {k: v for k, v in os.environ.items() if k not in SWITCHES}
    base.update(DFGAN_NO_PROGRESS="1", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    runs = {}
    for name, switches in SETTINGS.items():
        out = tmp_path / name.replace("/", "-").replace(" ", "_")
        runs[name] = subprocess.Popen([sys.executable, "-c", RUN, str(out)], cwd=ROOT, env={**base, **switches},
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = {}
    for name, process in runs.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{name}: exit {process.returncode}\n{stderr[-3000:]}"
        results[name] = json.loads(stdout.strip().splitlines()[-1])
    return results


@pytest.mark.slow
def test_phantom_and_prepared_arrays_are_the_same_bytes_with_any_vector_paths(tmp_path: Path) -> None:
    results = run_all(tmp_path)
    reference = results["all paths on"]
    off = results["AVX2/FMA/AVX off"]["paths"]
    assert not any(off.values()), off  # the switches took effect in the run that turns everything off
    for name, result in results.items():
        print(f"\n{name}: usable vector paths {result['paths']}")
    kinds = {"raw/dicom-images-train", "raw/train-rle.csv", "sheet.png", "prepared/images.npy", "prepared/masks.npy"}
    assert all(any(f.startswith(k) for f in reference["files"]) for k in kinds), sorted(reference["files"])
    assert reference["jpeg"] >= 1  # a JPEG-compressed DICOM: the encoder and decoder are compared too
    for name, result in results.items():
        assert result["files"].keys() == reference["files"].keys(), name
        differing = sorted(Path(f).name for f, md5 in result["files"].items() if md5 != reference["files"][f])
        assert not differing, f"{name}: {len(differing)} files differ from 'all paths on': {differing}"
