"""`.npz` outputs hash the same on every Python: no forced ZIP64 headers, fixed timestamps, np.load reads them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from dfgan.core.array_io import save_npz

ARRAYS = {
    "features": np.arange(6 * 2048, dtype=np.float32).reshape(6, 2048) / 7,
    "sigma": np.eye(3),
    "masks": np.zeros((2, 8, 8), dtype=np.uint8),
}


@pytest.mark.parametrize("compress", [False, True])
def test_save_npz_round_trips_through_np_load(tmp_path: Path, compress: bool) -> None:
    save_npz(tmp_path / "a.npz", compress=compress, **ARRAYS)
    with np.load(tmp_path / "a.npz") as loaded:
        assert sorted(loaded.files) == sorted(ARRAYS)
        for name, array in ARRAYS.items():
            assert loaded[name].dtype == array.dtype and np.array_equal(loaded[name], array)


@pytest.mark.parametrize("compress", [False, True])
def test_save_npz_headers_do_not_depend_on_the_python_patch_release(tmp_path: Path, compress: bool) -> None:
    # np.savez forces ZIP64, and CPython 3.11.2 and 3.11.7 write its "version made by" as 20 and 45: same arrays,
    # different bytes. Without ZIP64 every CPython writes version 2.0 (the zip spec's value for stored/deflate).
    save_npz(tmp_path / "a.npz", compress=compress, **ARRAYS)
    infos = zipfile.ZipFile(tmp_path / "a.npz").infolist()
    assert [i.filename for i in infos] == [f"{name}.npy" for name in ARRAYS]
    for info in infos:
        assert (info.create_version, info.extract_version) == (20, 20)
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.compress_type == (zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
        assert 0x0001 not in _extra_field_ids(info.extra)  # no ZIP64 extra field


def test_save_npz_writes_identical_bytes_twice(tmp_path: Path) -> None:
    save_npz(tmp_path / "a.npz", compress=True, **ARRAYS)
    save_npz(tmp_path / "b.npz", compress=True, **ARRAYS)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def _extra_field_ids(extra: bytes) -> list[int]:
    ids, offset = [], 0
    while offset + 4 <= len(extra):
        header_id = int.from_bytes(extra[offset:offset + 2], "little")
        size = int.from_bytes(extra[offset + 2:offset + 4], "little")
        ids.append(header_id)
        offset += 4 + size
    return ids
