"""The SIIM-ACR download's layout: the run-length CSV (stage-1 or stage-2 header) and the DICOM tree.

Shared by the ``prepare`` stage, which reads a real download or the phantom, and the phantom's contact sheet,
which reads its own output back through the same path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dfgan.core.errors import InputError
from dfgan.core.settings import Settings
from dfgan.data.rle import is_empty_code

ID_COLUMN = "ImageId"
CODE_COLUMN = "EncodedPixels"


class PrepareError(InputError):
    """Bad input to the prepare stage; the message names the file, or the CSV row and ImageId."""


def read_text_csv(csv_path: Path, what: str) -> pd.DataFrame:
    """A CSV as strings (empty cells as ""), or a :class:`PrepareError` naming the file (``what``: e.g. "RLE CSV")."""
    if not csv_path.is_file():
        raise PrepareError(f"{csv_path}: {what} not found")
    try:
        return pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise PrepareError(f"{csv_path}: cannot parse the {what} ({error})") from None


def read_rle_table(csv_path: str | Path) -> pd.DataFrame:
    """The RLE table in either header form, stripped: columns ``ImageId``, ``EncodedPixels``, ``csv_row``.

    Stage 1 (``ImageId, EncodedPixels``: a space in the header and before every value) and stage 2
    (``ImageId,EncodedPixels``) both work. ``csv_row`` is the 1-based data row (the header is row 0).
    """
    csv_path = Path(csv_path)
    table = read_text_csv(csv_path, "RLE CSV")
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in (ID_COLUMN, CODE_COLUMN) if c not in table.columns]
    if missing:
        raise PrepareError(
            f"{csv_path}: missing column(s) {missing}; found {list(table.columns)} "
            f"(expected '{ID_COLUMN}, {CODE_COLUMN}' or '{ID_COLUMN},{CODE_COLUMN}')"
        )
    table = table[[ID_COLUMN, CODE_COLUMN]].apply(lambda column: column.str.strip())
    table["csv_row"] = np.arange(1, len(table) + 1)
    empty_ids = table.index[table[ID_COLUMN] == ""]
    if len(empty_ids):
        raise PrepareError(f"{csv_path}: CSV row {int(table.loc[empty_ids[0], 'csv_row'])} has an empty ImageId")
    return table


def find_dicoms(raw_dir: str | Path, dicom_glob: str) -> dict[str, Path]:
    """ImageId (the file stem, i.e. the SOPInstanceUID) -> DICOM path, for every file matching the glob."""
    raw_dir = Path(raw_dir)
    found: dict[str, Path] = {}
    for path in sorted(raw_dir.glob(dicom_glob)):
        if not path.is_file():
            continue
        if path.stem in found:
            raise PrepareError(f"two DICOM files share the ImageId {path.stem}: {found[path.stem]} and {path}")
        found[path.stem] = path
    return found


def check_raw_data(settings: Settings) -> str:
    """The cheap checks of ``data.raw_dir`` that ``stages.check`` runs: the CSV parses, DICOMs match the glob, and
    enough positive images have a DICOM for ``max(sizes) + data.test_size``. Returns a one-line summary."""
    data = settings.data
    raw_dir = Path(data.raw_dir)
    if not raw_dir.is_dir():
        if raw_dir == Path(settings.phantom.out_dir):
            return f"{raw_dir}: not there yet; the phantom stage writes it"
        raise PrepareError(f"{raw_dir}: raw data directory not found (data.raw_dir)")
    csv_path = raw_dir / data.rle_csv
    table = read_rle_table(csv_path)
    dicoms = find_dicoms(raw_dir, data.dicom_glob)
    if not dicoms:
        raise PrepareError(f"{raw_dir / data.dicom_glob}: no DICOM file matches (data.dicom_glob)")
    positives = {i for i, code in zip(table[ID_COLUMN], table[CODE_COLUMN]) if not is_empty_code(code)}
    available = len(positives & set(dicoms))
    needed = max(settings.sizes) + data.test_size
    if available < needed:
        raise PrepareError(
            f"{csv_path}: {available} positive images have a DICOM, but max(sizes) + data.test_size = {needed}; "
            "lower the sizes or the test size"
        )
    return f"{csv_path}: {len(table)} rows, {len(positives)} positive images ({available} with a DICOM), {len(dicoms)} DICOMs"
