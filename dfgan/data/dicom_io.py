"""Reading chest-radiograph DICOMs as uint8 images, and writing the phantom's DICOMs.

The reader copes with what the SIIM-ACR files and other real chest X-rays contain: JPEG-baseline compressed pixel
data (decoded by pylibjpeg or Pillow through pydicom), MONOCHROME1 (inverted) images, and 12-16 bit data that must
be mapped to 0..255 (modality rescale, then the VOI window when the file has one, else the image's min..max).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGBaseline8Bit, SecondaryCaptureImageStorage

from dfgan.core.errors import InputError

# Written into every file the phantom makes, so that its bytes do not change with the pydicom version.
IMPLEMENTATION_CLASS_UID = UID("1.2.826.0.1.3680043.8.498.1")
IMPLEMENTATION_VERSION_NAME = "DFGAN_PHANTOM"
FIXED_DATE = "19010101"  # SIIM-ACR anonymised every study to this date
FIXED_TIME = "000000.00"


class DicomError(InputError):
    """A DICOM file that cannot be turned into an image; the message names the file."""


def read_dicom(path: str | Path) -> np.ndarray:
    """Read a single-frame grayscale (or RGB, reduced to luma) radiograph as uint8 (H, W), bright = dense."""
    path = Path(path)
    dataset = _read_dataset(path)
    pixels = _decoded_pixels(dataset, path)
    pixels = _single_frame_gray(pixels, dataset, path)
    image = _to_uint8(pixels, dataset)
    if str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).strip() == "MONOCHROME1":
        image = 255 - image  # MONOCHROME1 stores dense tissue dark; show it bright like MONOCHROME2
    return np.ascontiguousarray(image)


TRUNCATION_WARNING = "End of file reached"  # what pydicom says when a file stops inside an element


def _read_dataset(path: Path) -> Dataset:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dataset = pydicom.dcmread(path)
    except FileNotFoundError:
        raise DicomError(f"{path}: DICOM file not found") from None
    except Exception as error:  # pydicom raises many kinds for damaged files: report them all the same way
        raise DicomError(f"{path}: not a readable DICOM file ({type(error).__name__}: {error})") from None
    if any(TRUNCATION_WARNING in str(w.message) for w in caught):
        # pydicom drops an element cut off by the end of the file (for compressed pixel data, the whole image)
        raise DicomError(
            f"{path}: DICOM file is truncated (it ends inside an element, at {path.stat().st_size} bytes); "
            "copy or download it again"
        )
    if "PixelData" not in dataset:
        raise DicomError(f"{path}: DICOM has no PixelData (not an image)")
    return dataset


def _decoded_pixels(dataset: Dataset, path: Path) -> np.ndarray:
    try:
        return dataset.pixel_array
    except Exception as error:  # a missing codec or corrupt compressed stream
        syntax = dataset.file_meta.get("TransferSyntaxUID", "?") if hasattr(dataset, "file_meta") else "?"
        if "less than expected" in str(error):
            raise DicomError(f"{path}: DICOM pixel data is truncated ({error}); copy or download it again") from None
        raise DicomError(f"{path}: cannot decode pixel data (transfer syntax {syntax}): {error}") from None


def _single_frame_gray(pixels: np.ndarray, dataset: Dataset, path: Path) -> np.ndarray:
    """Refuse multi-frame data (not a single radiograph); reduce RGB to luma (a screenshot-like export)."""
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    if frames > 1:
        raise DicomError(f"{path}: multi-frame DICOM ({frames} frames); expected a single radiograph")
    if samples == 3 and pixels.ndim == 3:
        # pydicom already converted YCbCr to RGB; ITU-R BT.601 luma, kept 8-bit when the colours were
        luma = pixels[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        return np.round(luma).astype(np.uint8) if pixels.dtype == np.uint8 else luma
    if pixels.ndim != 2:
        raise DicomError(f"{path}: unexpected pixel array shape {pixels.shape} (SamplesPerPixel {samples})")
    return pixels


def _is_plain_8bit(pixels: np.ndarray, dataset: Dataset) -> bool:
    """8-bit unsigned data with an identity rescale is already a display image: keep its values as they are."""
    slope = float(dataset.get("RescaleSlope", 1) or 1)
    intercept = float(dataset.get("RescaleIntercept", 0) or 0)
    return pixels.dtype == np.uint8 and int(dataset.get("BitsStored", 8)) <= 8 and slope == 1 and intercept == 0


def _to_uint8(pixels: np.ndarray, dataset: Dataset) -> np.ndarray:
    if _is_plain_8bit(pixels, dataset):
        return pixels
    values = pixels.astype(np.float64)
    values = values * float(dataset.get("RescaleSlope", 1) or 1) + float(dataset.get("RescaleIntercept", 0) or 0)
    low, high = _display_range(values, dataset)
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    scaled = (values - low) / (high - low)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def _first_value(value: Any) -> float:
    return float(value[0]) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else float(value)


def _display_range(values: np.ndarray, dataset: Dataset) -> tuple[float, float]:
    """The linear VOI window (DICOM PS3.3 C.11.2.1.2) when present and sane, else the data's min..max."""
    if "WindowCenter" in dataset and "WindowWidth" in dataset:
        try:
            center, width = _first_value(dataset.WindowCenter), _first_value(dataset.WindowWidth)
        except (TypeError, ValueError):
            center, width = 0.0, 0.0
        if width >= 1:
            return center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    return float(values.min()), float(values.max())


def write_dicom(
    path: str | Path,
    image: np.ndarray,
    image_id: str,
    study_uid: str,
    series_uid: str,
    *,
    patient_id: str = "anonymous",
    patient_sex: str = "O",
    patient_age: int = 0,
    view_position: str = "PA",
    pixel_spacing_mm: float = 0.168,
    jpeg_quality: int | None = None,
) -> Path:
    """Write an 8-bit MONOCHROME2 chest radiograph as a Secondary Capture DICOM (Modality CR), like SIIM-ACR's.

    ``jpeg_quality`` set: JPEG-baseline compressed (encapsulated), as many real SIIM-ACR files are; else
    uncompressed explicit VR little endian. Fixed dates and caller-given UIDs make the file byte-reproducible.
    """
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"write_dicom({path}): expected a uint8 (H, W) image, got {image.dtype} {image.shape}")
    path = Path(path)
    transfer_syntax = ExplicitVRLittleEndian if jpeg_quality is None else JPEGBaseline8Bit
    dataset = Dataset()
    dataset.file_meta = _file_meta(image_id, transfer_syntax)
    _fill_identity(dataset, image_id, study_uid, series_uid, patient_id, patient_sex, patient_age, view_position)
    _fill_image_module(dataset, image, pixel_spacing_mm)
    if jpeg_quality is None:
        dataset.PixelData = np.ascontiguousarray(image).tobytes()
    else:
        dataset.PixelData = encapsulate([_jpeg_bytes(image, jpeg_quality)])
        dataset["PixelData"].VR = "OB"
        dataset.LossyImageCompression = "01"
        dataset.LossyImageCompressionMethod = "ISO_10918_1"
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    return path


def _file_meta(image_id: str, transfer_syntax: UID) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = UID(image_id)
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def _fill_identity(
    dataset: Dataset,
    image_id: str,
    study_uid: str,
    series_uid: str,
    patient_id: str,
    patient_sex: str,
    patient_age: int,
    view_position: str,
) -> None:
    dataset.SpecificCharacterSet = "ISO_IR 100"
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = UID(image_id)
    dataset.StudyDate = dataset.ContentDate = FIXED_DATE
    dataset.StudyTime = dataset.ContentTime = FIXED_TIME
    dataset.AccessionNumber = ""
    dataset.Modality = "CR"
    dataset.ConversionType = "WSD"
    dataset.ReferringPhysicianName = ""
    dataset.SeriesDescription = f"view: {view_position}"
    dataset.PatientName = patient_id
    dataset.PatientID = patient_id
    dataset.PatientBirthDate = ""
    dataset.PatientSex = patient_sex
    dataset.PatientAge = f"{int(patient_age):03d}Y"
    dataset.BodyPartExamined = "CHEST"
    dataset.ViewPosition = view_position
    dataset.StudyInstanceUID = UID(study_uid)
    dataset.SeriesInstanceUID = UID(series_uid)
    dataset.StudyID = ""
    dataset.SeriesNumber = 1
    dataset.InstanceNumber = 1
    dataset.PatientOrientation = ""


def _fill_image_module(dataset: Dataset, image: np.ndarray, pixel_spacing_mm: float) -> None:
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.Rows, dataset.Columns = int(image.shape[0]), int(image.shape[1])
    dataset.PixelSpacing = [f"{pixel_spacing_mm:.3f}", f"{pixel_spacing_mm:.3f}"]
    dataset.BitsAllocated = 8
    dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0


def _jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
    """A baseline (non-progressive, 8-bit, single grayscale component) JPEG of the image, via Pillow."""
    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="JPEG", quality=int(quality), optimize=False,
                                          progressive=False, subsampling=0)
    return buffer.getvalue()
