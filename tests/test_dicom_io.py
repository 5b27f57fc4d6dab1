"""Reading real-world radiograph DICOMs (JPEG-baseline, MONOCHROME1, 16-bit) and writing the phantom's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, SecondaryCaptureImageStorage, generate_uid

from dfgan.data.dicom_io import DicomError, read_dicom, write_dicom


def gradient(height: int = 48, width: int = 64) -> np.ndarray:
    """A smooth test image (JPEG keeps it nearly exact) with distinct rows and columns."""
    y, x = np.mgrid[0:height, 0:width]
    return (40 + 2 * y + x).astype(np.uint8)


def write_raw_dicom(path: Path, pixels: np.ndarray, **attributes: object) -> Path:
    """An uncompressed single-frame DICOM built by hand, independent of ``write_dicom``."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    bits = 8 if pixels.dtype == np.uint8 else 16
    ds.BitsAllocated = bits
    ds.BitsStored = attributes.pop("BitsStored", bits)
    ds.HighBit = int(ds.BitsStored) - 1
    ds.PixelRepresentation = 0
    for key, value in attributes.items():
        setattr(ds, key, value)
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_write_then_read_uncompressed_is_exact(tmp_path: Path) -> None:
    image = gradient()
    path = write_dicom(tmp_path / "a" / "b" / "1.2.3.dcm", image, "1.2.3", "1.2", "1.2.4")
    np.testing.assert_array_equal(read_dicom(path), image)
    ds = pydicom.dcmread(path)
    assert ds.Modality == "CR" and ds.PhotometricInterpretation == "MONOCHROME2" and ds.BitsStored == 8
    assert ds.SOPInstanceUID == "1.2.3" and ds.StudyInstanceUID == "1.2" and ds.SeriesInstanceUID == "1.2.4"
    assert ds.file_meta.MediaStorageSOPInstanceUID == "1.2.3"
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def test_jpeg_baseline_compressed_file_is_decoded(tmp_path: Path) -> None:
    image = gradient()
    path = write_dicom(tmp_path / "jpeg.dcm", image, "1.2.3", "1.2", "1.2.4", jpeg_quality=95)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert ds["PixelData"].is_undefined_length  # encapsulated fragments, as in the real compressed files
    assert bytes(ds.PixelData).find(b"\xff\xd8") >= 0  # a JPEG start-of-image marker inside
    decoded = read_dicom(path)
    assert decoded.dtype == np.uint8 and decoded.shape == image.shape
    assert np.abs(decoded.astype(int) - image.astype(int)).max() <= 3


def test_writing_is_byte_reproducible(tmp_path: Path) -> None:
    image = gradient()
    for quality in (None, 90):
        a = write_dicom(tmp_path / "a.dcm", image, "1.2.3", "1.2", "1.2.4", jpeg_quality=quality).read_bytes()
        b = write_dicom(tmp_path / "b.dcm", image, "1.2.3", "1.2", "1.2.4", jpeg_quality=quality).read_bytes()
        assert a == b


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    image = gradient()
    path = write_raw_dicom(tmp_path / "m1.dcm", image, PhotometricInterpretation="MONOCHROME1")
    np.testing.assert_array_equal(read_dicom(path), 255 - image)


def test_16_bit_is_windowed_to_its_min_max(tmp_path: Path) -> None:
    pixels = np.linspace(1000, 4095, 48 * 64).reshape(48, 64).astype(np.uint16)
    path = write_raw_dicom(tmp_path / "16.dcm", pixels, BitsStored=12)
    image = read_dicom(path)
    assert image.dtype == np.uint8 and image.min() == 0 and image.max() == 255
    expected = np.round((pixels - 1000.0) / 3095.0 * 255).astype(np.uint8)
    np.testing.assert_array_equal(image, expected)


def test_16_bit_rescale_and_voi_window_then_monochrome1(tmp_path: Path) -> None:
    pixels = np.arange(0, 4096, 1, dtype=np.uint16)[: 64 * 64].reshape(64, 64)
    # modality values: 2 * stored - 1000, in [-1000, 7190]; window 1000..3000 (centre 2000.5, width 2001)
    path = write_raw_dicom(tmp_path / "voi.dcm", pixels, RescaleSlope="2", RescaleIntercept="-1000",
                           WindowCenter="2000.5", WindowWidth="2001", PhotometricInterpretation="MONOCHROME1")
    image = read_dicom(path)
    values = pixels * 2.0 - 1000.0
    expected = 255 - np.round(np.clip((values - 1000.0) / 2000.0, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(image, expected)


def test_8_bit_values_are_kept_as_they_are(tmp_path: Path) -> None:
    image = np.full((16, 16), 100, np.uint8)
    image[0, 0] = 120  # a narrow range must not be stretched
    np.testing.assert_array_equal(read_dicom(write_raw_dicom(tmp_path / "8.dcm", image)), image)


def test_constant_16_bit_image_gives_zeros(tmp_path: Path) -> None:
    path = write_raw_dicom(tmp_path / "flat.dcm", np.full((8, 8), 700, np.uint16))
    assert read_dicom(path).max() == 0


def test_multi_frame_is_refused(tmp_path: Path) -> None:
    path = write_raw_dicom(tmp_path / "frames.dcm", np.zeros((2, 8, 8), np.uint8), NumberOfFrames=2)
    with pytest.raises(DicomError, match="multi-frame"):
        read_dicom(path)


def test_rgb_is_reduced_to_luma(tmp_path: Path) -> None:
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    path = tmp_path / "rgb.dcm"
    write_raw_dicom(path, rgb[..., 0])  # start from a valid file, then turn it into RGB
    ds = pydicom.dcmread(path)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.Rows, ds.Columns = 8, 8
    ds.PixelData = rgb.tobytes()
    ds.save_as(path)
    image = read_dicom(path)
    assert image.shape == (8, 8) and image.dtype == np.uint8
    assert (image == 60).all()  # 0.299 * 200, not stretched: 8-bit colour is already a display image


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.dcm"
    path.write_bytes(b"this is not a DICOM file at all" * 10)
    with pytest.raises(DicomError, match="garbage.dcm"):
        read_dicom(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(DicomError, match="nothere.dcm: DICOM file not found"):
        read_dicom(tmp_path / "nothere.dcm")


def test_dicom_without_pixel_data_is_refused(tmp_path: Path) -> None:
    path = write_raw_dicom(tmp_path / "nopix.dcm", np.zeros((4, 4), np.uint8))
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(DicomError, match="nopix.dcm: DICOM has no PixelData"):
        read_dicom(path)


def test_truncated_jpeg_stream_is_a_dicom_error(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "bad.dcm", gradient(), "1.2.3", "1.2", "1.2.4", jpeg_quality=90)
    data = path.read_bytes()
    start, end = data.find(b"\xff\xd8"), data.rfind(b"\xff\xd9")
    path.write_bytes(data[: start + 40] + b"\x00" * (end - start - 40) + data[end:])  # zero the entropy-coded data
    with pytest.raises(DicomError, match="bad.dcm"):
        read_dicom(path)


@pytest.mark.parametrize("jpeg_quality, message", [(90, "file is truncated"), (None, "pixel data is truncated")])
def test_a_cut_off_file_is_called_truncated(tmp_path: Path, jpeg_quality: int | None, message: str) -> None:
    path = write_dicom(tmp_path / "cut.dcm", gradient(), "1.2.3", "1.2", "1.2.4", jpeg_quality=jpeg_quality)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    with pytest.raises(DicomError, match=f"cut.dcm: DICOM {message}.*copy or download it again"):
        read_dicom(path)


def test_write_refuses_non_uint8(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_dicom(tmp_path / "x.dcm", np.zeros((4, 4), np.uint16), "1.2.3", "1.2", "1.2.4")
