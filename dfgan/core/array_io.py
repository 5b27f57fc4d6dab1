"""``.npz`` files whose bytes depend only on the arrays, so DVC hashes the same outputs the same on every machine.

``np.savez`` forces ZIP64 headers, whose "version made by" field CPython patch releases write differently
(3.11.2: 2.0, 3.11.7: 4.5): the same arrays then hash differently on two Pythons and every stage downstream reruns.
Here each member is written with its size known up front, so ZIP64 is used only where the size needs it (> 2 GiB),
with the fixed 1980 timestamp ``np.savez`` also uses; ``np.load`` reads the result as usual.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def save_npz(path: str | Path, *, compress: bool = False, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` as ``np.savez`` (or ``np.savez_compressed`` with ``compress``) would."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
            info.compress_type = method
            info.external_attr = 0o600 << 16  # rw------- like np.savez's members
            archive.writestr(info, member.getbuffer())
