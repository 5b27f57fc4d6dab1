"""The SIIM-ACR run-length codec: column-major, relative starts, exact round trips, clear errors."""

from __future__ import annotations

import time

import numpy as np
import pytest

from dfgan.data.rle import RLEError, code_reading, decode_union, is_empty_code, rle_decode, rle_encode


def test_hand_made_4x4_pins_column_major_and_relative_starts() -> None:
    # "1 2 3 1": skip pixel 0, fill 1-2; then skip 3 more (3, 4, 5), fill pixel 6.
    # Column-major on 4x4: pixel p is (row p % 4, column p // 4) -> (1,0), (2,0), (2,1).
    expected = np.zeros((4, 4), np.uint8)
    expected[1, 0] = expected[2, 0] = expected[2, 1] = 1
    np.testing.assert_array_equal(rle_decode("1 2 3 1", 4, 4), expected)
    assert rle_encode(expected) == "1 2 3 1"


def test_column_major_on_a_non_square_image() -> None:
    # H=2, W=3: the second pixel is below the first (row 1, column 0), not beside it.
    mask = rle_decode("1 1", 2, 3)
    assert mask.shape == (2, 3) and mask[1, 0] == 1 and mask.sum() == 1
    # the last pixel of the first column then the first of the second column: one run across the column break
    np.testing.assert_array_equal(rle_decode("1 2", 2, 3), np.array([[0, 1, 0], [1, 0, 0]], np.uint8))


def test_starts_after_the_first_are_gaps_not_offsets() -> None:
    # relative: pixels 0,1 then a gap of 5 -> pixel 7; an absolute reading would give pixel 5
    flat = rle_decode("0 2 5 1", 4, 4).T.reshape(-1)
    assert np.flatnonzero(flat).tolist() == [0, 1, 7]
    flat = rle_decode("0 2 5 1", 4, 4, mode="absolute").T.reshape(-1)
    assert np.flatnonzero(flat).tolist() == [0, 1, 5]


def test_auto_mode_falls_back_to_absolute_only_when_relative_overflows() -> None:
    # 3x4 = 12 pixels: relative "0 2 10 1" would end at 13 (> 12); absolute starts 0, 10 increase and fit
    flat = rle_decode("0 2 10 1", 3, 4).T.reshape(-1)
    assert np.flatnonzero(flat).tolist() == [0, 1, 10]
    with pytest.raises(RLEError, match="past H\\*W"):
        rle_decode("0 2 10 1", 3, 4, "IMG", mode="relative")


@pytest.mark.parametrize("code", ["-1", " -1", "", "  "])
def test_no_mask_codes_decode_to_empty(code: str) -> None:
    assert is_empty_code(code)
    assert rle_decode(code, 5, 7).sum() == 0
    assert rle_decode(code, 5, 7).shape == (5, 7)


def test_empty_and_full_masks_encode_as_expected() -> None:
    assert rle_encode(np.zeros((8, 6), np.uint8)) == "-1"
    assert rle_encode(np.ones((8, 6), np.uint8)) == "0 48"
    np.testing.assert_array_equal(rle_decode("0 48", 8, 6), np.ones((8, 6), np.uint8))


def test_round_trip_on_random_masks_including_corner_pixels() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        height, width = (int(v) for v in rng.integers(1, 40, 2))
        mask = (rng.random((height, width)) < rng.uniform(0, 1)).astype(np.uint8)
        if rng.random() < 0.5:
            mask[0, 0] = 1
        if rng.random() < 0.5:
            mask[-1, -1] = 1
        code = rle_encode(mask)
        np.testing.assert_array_equal(rle_decode(code, height, width, mode="relative"), mask)
        np.testing.assert_array_equal(rle_decode(code, height, width), mask)


def test_round_trip_at_1024_with_blob_masks() -> None:
    rng = np.random.default_rng(1)
    mask = np.zeros((1024, 1024), np.uint8)
    for _ in range(3):
        y, x = (int(v) for v in rng.integers(0, 1000, 2))
        mask[y : y + 30, x : x + 17] = 1
    mask[0, 0] = mask[1023, 1023] = 1
    np.testing.assert_array_equal(rle_decode(rle_encode(mask), 1024, 1024), mask)


def test_encode_treats_any_nonzero_as_foreground() -> None:
    mask = np.array([[0, 255], [3, 0]], np.uint8)
    assert rle_encode(mask) == rle_encode((mask > 0).astype(np.uint8))


def test_union_of_several_rows_of_one_image() -> None:
    a = np.zeros((10, 10), np.uint8)
    a[1:4, 1:3] = 1
    b = np.zeros((10, 10), np.uint8)
    b[2:8, 2:9] = 1  # overlaps a
    union = decode_union([rle_encode(a), "-1", rle_encode(b)], 10, 10, "IMG")
    np.testing.assert_array_equal(union, a | b)
    assert decode_union([], 3, 4, "IMG").shape == (3, 4)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("1 2 3", "odd number of tokens"),
        ("1 2 x 3", "non-integer token 'x'"),
        ("1 2.5", "non-integer token '2.5'"),
        ("1 -2", "negative run length"),
        ("-1 2", "negative start"),
        ("10 7", "past H\\*W = 16"),
        ("5 3 14 4", "past H\\*W"),  # fits neither relative (ends 26) nor absolute (ends 18)
    ],
)
def test_bad_codes_raise_naming_image_and_row(code: str, message: str) -> None:
    with pytest.raises(RLEError, match=message) as error:
        rle_decode(code, 4, 4, "1.2.3.4", row=17)
    assert "ImageId 1.2.3.4" in str(error.value) and "CSV row 17" in str(error.value)
    assert isinstance(error.value, ValueError)


def test_union_errors_name_the_offending_row() -> None:
    with pytest.raises(RLEError, match="ImageId IMG \\(CSV row 9\\)"):
        decode_union(["0 1", "0 1 2"], 4, 4, "IMG", rows=[8, 9])


def test_overlapping_absolute_starts_are_refused() -> None:
    with pytest.raises(RLEError, match="ImageId IMG: absolute starts overlap"):
        rle_decode("0 5 3 2", 4, 4, "IMG", mode="absolute")


def test_code_reading_tells_which_interpretations_fit() -> None:
    assert code_reading("-1", 16) == "empty"
    assert code_reading("3 2", 16) == "both"  # one run reads the same either way
    assert code_reading("0 2 5 1", 16) == "both"  # gaps that happen to increase: ambiguous
    assert code_reading("0 2 10 1", 12) == "absolute"  # the relative reading would end at 13
    assert code_reading("4 2 1 2 1 1", 16) == "relative"  # later starts smaller than earlier ones: gaps
    with pytest.raises(RLEError, match="ImageId X \\(CSV row 2\\)"):
        code_reading("5 3 14 4", 16, "X", 2)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown RLE mode"):
        rle_decode("0 1", 2, 2, mode="sideways")  # type: ignore[arg-type]


def test_decoding_a_table_the_size_of_siim_acr_takes_seconds() -> None:
    from benchmarks.bench_rle import REAL_POSITIVE_ROWS, REAL_ROWS, table_codes, time_decoding

    codes = table_codes(REAL_ROWS, REAL_POSITIVE_ROWS, 1024)
    start = time.perf_counter()
    seconds = time_decoding(codes, 1024)
    print(f"\n{REAL_ROWS} SIIM-sized rows at 1024x1024 decoded in {seconds:.2f} s "
          f"({REAL_ROWS / seconds:,.0f} rows/s; {time.perf_counter() - start:.2f} s in all)")
