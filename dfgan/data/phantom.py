"""A procedural phantom of the SIIM-ACR pneumothorax data, written in the exact stage-1 format.

Each image is a schematic frontal chest radiograph (body, spine and mediastinum, heart, lung fields with posterior
and anterior rib shadows, branching vessels fading to the periphery, clavicles, diaphragm domes, quantum noise)
whose anatomy varies per patient. A pneumothorax is a crescent along the apical/lateral pleural margin of a lung
where lung markings are absent, bounded on the lung side by a thin bright visceral pleural line; the mask is exactly
that crescent. Its statistics follow those measured on the real table (see ``REAL_MASK_STATS``).

Layout written (the real ingestion path reads it unchanged): ``dicom-images-train/<Study>/<Series>/<ImageId>.dcm``
and ``train-rle.csv`` with header ``ImageId, EncodedPixels``, values `` <code>`` / `` -1``, one row per region.
Everything is deterministic from the seed: image ``i`` draws from ``SeedSequence([seed, i])``, so the output does
not depend on the number of worker processes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from pydicom.uid import generate_uid
from tqdm import tqdm

from dfgan.core.imaging import outline, save_grid
from dfgan.core.runtime import progress_disabled, worker_pool
from dfgan.data.dicom_io import read_dicom, write_dicom
from dfgan.data.rle import decode_union, rle_encode
from dfgan.data.siim import find_dicoms, read_rle_table

CSV_NAME = "train-rle.csv"
DICOM_DIR = "dicom-images-train"
CSV_HEADER = "ImageId, EncodedPixels"  # stage 1: note the space after the comma

# Measured on 600 real positive masks (../shared/README.md); the sampler below is calibrated against them.
REAL_MASK_STATS = {
    "area_fraction": {"p5": 0.0014, "p25": 0.0042, "median": 0.0087, "p75": 0.018, "p95": 0.048},
    "regions": {"1": 0.75, "2": 0.18, "3+": 0.07},
    "centroid_y_median": 0.23,
    "centroid_y_p10_p90": (0.12, 0.58),
    "left_half": 0.57,
    "both_halves": 0.14,
}
# Region counts per positive image (3+ split as 3 and 4) and the log-normal total area that matches the quantiles.
REGION_COUNT_PROBS = {1: 0.75, 2: 0.18, 3: 0.05, 4: 0.02}
AREA_LOG_MEDIAN = math.log(0.0087)
AREA_LOG_SIGMA = 1.07  # (ln p95 - ln median) / 1.645 ~ 1.04 and (ln median - ln p5) / 1.645 ~ 1.11
AREA_CLIP = (0.0006, 0.09)
FIRST_REGION_IMAGE_LEFT = 0.6  # the patient's right lung
OTHER_LUNG_PROBABILITY = 0.45  # a further region lies in the other lung
APICAL_PROBABILITY = 0.68  # a region's centre lies on the apical rather than the lateral margin
CRESCENT_TAPER = 1.3  # exponent of the thickness profile along the margin (cos^k)
MAX_THICKNESS_PER_ARC = 0.3  # the thickest point of a crescent, as a share of its length along the margin
PLEURAL_ARC_DEG = (-35.0, 155.0)  # the apical and lateral margin; beyond lie the mediastinum and the diaphragm


# ----------------------------------------------------------------------------------------------------------------
# Geometry helpers: shapes are point lists in a canonical unit frame (x right, y down), mapped to pixels per patient.


def catmull_rom(points: np.ndarray, samples: int, closed: bool) -> np.ndarray:
    """A smooth curve through the control points (uniform Catmull-Rom), vectorized over all segments."""
    p = np.asarray(points, dtype=np.float64)
    if closed:
        ext = np.concatenate([p[-1:], p, p[:2]])
    else:
        ext = np.concatenate([p[:1], p, p[-1:]])
    n_segments = len(p) if closed else len(p) - 1
    t = np.linspace(0.0, 1.0, samples, endpoint=False)[:, None]
    curves = []
    for i in range(n_segments):
        p0, p1, p2, p3 = ext[i], ext[i + 1], ext[i + 2], ext[i + 3]
        curves.append(
            0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
        )
    out = np.concatenate(curves)
    return out if closed else np.concatenate([out, p[-1:]])


def mirror(points: np.ndarray) -> np.ndarray:
    """Left-right mirror in the canonical frame."""
    out = np.array(points, dtype=np.float64)
    out[:, 0] = 1.0 - out[:, 0]
    return out


@dataclass(frozen=True)
class Frame:
    """Canonical unit coordinates -> pixel coordinates (scale, small rotation, shift) for one patient."""

    size: int
    matrix: np.ndarray  # 2x3 affine

    @staticmethod
    def make(size: int, scale: float, angle_deg: float, shift: tuple[float, float]) -> "Frame":
        a = math.radians(angle_deg)
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) * scale * size
        centre = np.array([0.5, 0.5])
        offset = size * (centre + np.asarray(shift)) - rot @ centre
        return Frame(size, np.concatenate([rot, offset[:, None]], axis=1))

    def px(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) @ self.matrix[:, :2].T + self.matrix[:, 2]

    def canonical_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Canonical (u, v) of every pixel centre, as float32 (H, W) arrays."""
        inverse = cv2.invertAffineTransform(self.matrix)
        ys, xs = np.mgrid[0 : self.size, 0 : self.size].astype(np.float32)
        u = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
        v = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
        return u.astype(np.float32), v.astype(np.float32)

    def length(self, canonical: float) -> float:
        return canonical * float(np.hypot(*self.matrix[:, 0]))


SUBPIXEL_BITS = 4  # cv2 drawing with fractional coordinates: smooth edges even at 256 px


def _fixed(points_px: np.ndarray) -> np.ndarray:
    return np.round(points_px * (1 << SUBPIXEL_BITS)).astype(np.int32)


def fill_polygon(frame: Frame, points: np.ndarray) -> np.ndarray:
    """A binary uint8 mask of a closed canonical polygon."""
    canvas = np.zeros((frame.size, frame.size), np.uint8)
    cv2.fillPoly(canvas, [_fixed(frame.px(points))], 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    return canvas


def draw_curve(canvas: np.ndarray, frame: Frame, points: np.ndarray, width: float, value: float) -> None:
    """Draw an open canonical polyline of canonical ``width`` onto a float32 canvas (in place)."""
    thickness = max(1, int(round(frame.length(width))))
    cv2.polylines(canvas, [_fixed(frame.px(points))], False, float(value), thickness, cv2.LINE_AA, SUBPIXEL_BITS)


def wide_blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """A large Gaussian blur computed at 1/8 resolution (smooth fields only; fast at 1024 px)."""
    size = image.shape[0]
    small = cv2.resize(image, (max(8, size // 8), max(8, size // 8)), interpolation=cv2.INTER_AREA)
    small = blur(small, sigma_px * small.shape[0] / size)
    return cv2.resize(small, (image.shape[1], size), interpolation=cv2.INTER_LINEAR)


def blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    if sigma_px < 0.3:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigma_px, borderType=cv2.BORDER_REPLICATE)


# ----------------------------------------------------------------------------------------------------------------
# One patient's anatomy.


@dataclass(frozen=True)
class Patient:
    """The random anatomy and exposure of one phantom patient (canonical units, angles in degrees)."""

    scale: float
    angle: float
    shift: tuple[float, float]
    apex_y: float
    dome_y: float
    wall_x: float
    heart_scale: float
    heart_shift: float
    rib_spacing: float
    body_width: float
    contrast: float
    exposure: float
    gamma: float
    noise: float
    vessel_gain: float
    sex: str
    age: int


def sample_patient(rng: np.random.Generator) -> Patient:
    return Patient(
        scale=rng.uniform(0.92, 1.06),
        angle=rng.uniform(-3.0, 3.0),
        shift=(rng.uniform(-0.025, 0.025), rng.uniform(-0.05, 0.01)),
        apex_y=rng.uniform(0.07, 0.115),
        dome_y=rng.uniform(0.60, 0.68),
        wall_x=rng.uniform(0.09, 0.13),
        heart_scale=rng.uniform(0.9, 1.15),
        heart_shift=rng.uniform(-0.02, 0.02),
        rib_spacing=rng.uniform(0.058, 0.066),
        body_width=rng.uniform(0.0, 0.04),
        contrast=rng.uniform(0.85, 1.15),
        exposure=rng.uniform(-0.06, 0.06),
        gamma=rng.uniform(0.85, 1.2),
        noise=rng.uniform(0.6, 1.4),
        vessel_gain=rng.uniform(0.8, 1.2),
        sex=str(rng.choice(["M", "F"])),
        age=int(rng.integers(18, 90)),
    )


def right_lung_outline(p: Patient) -> np.ndarray:
    """The patient's right lung (image left), clockwise from the apex, canonical control points."""
    a, d, w = p.apex_y, p.dome_y, p.wall_x
    return np.array(
        [
            (0.30, a),
            (0.375, a + 0.03),
            (0.415, a + 0.11),
            (0.425, 0.40),
            (0.43, d - 0.05),
            (0.425, d + 0.03),
            (0.33, d - 0.02),
            (0.22, d + 0.025),
            (w + 0.03, d + 0.10),
            (w + 0.005, d + 0.065),
            (w - 0.005, 0.45),
            (w + 0.02, a + 0.15),
            (0.17, a + 0.04),
        ]
    )


def left_lung_outline(p: Patient) -> np.ndarray:
    """The patient's left lung (image right): the mirror of the right, its apex and dome slightly lower and its
    medial border pushed out by the aortic knob."""
    lung = mirror(right_lung_outline(p))
    lung[:, 1] += np.where(lung[:, 1] > 0.45, 0.025, 0.008)
    lung[2:4, 0] += np.array([0.01, 0.03])  # aortic knob
    lung[4:6, 0] += 0.02  # the medial border sits further out next to the heart
    return lung


def ellipse(centre: tuple[float, float], axes: tuple[float, float], angle_deg: float, n: int = 96) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    a = math.radians(angle_deg)
    x, y = axes[0] * np.cos(t), axes[1] * np.sin(t)
    return np.stack([centre[0] + x * math.cos(a) - y * math.sin(a), centre[1] + x * math.sin(a) + y * math.cos(a)], 1)


def heart_outline(p: Patient) -> np.ndarray:
    """The cardiac silhouette: right border just beside the spine, left border sweeping down to the apex on the
    left dome; its base sinks below the domes so it merges with the abdomen."""
    d = p.dome_y
    points = np.array(
        [
            (0.47, d - 0.25),
            (0.44, d - 0.17),
            (0.40, d - 0.08),
            (0.41, d + 0.0),
            (0.47, d + 0.06),
            (0.60, d + 0.07),
            (0.69, d + 0.03),
            (0.70, d - 0.04),
            (0.65, d - 0.14),
            (0.58, d - 0.21),
            (0.54, d - 0.25),
        ]
    )
    centre = np.array([0.54, d - 0.08])
    points = centre + (points - centre) * p.heart_scale + np.array([p.heart_shift, 0.0])
    return catmull_rom(points, 12, closed=True)


def body_outline(p: Patient) -> np.ndarray:
    """Neck, sloping shoulders and flanks (extending past the frame so no edge shows after the patient's shift)."""
    b = p.body_width
    half = np.array(
        [
            (0.385, -0.40),
            (0.39, 0.0),
            (0.37, 0.05),
            (0.27, 0.08),
            (0.14, 0.105),
            (0.07 - b, 0.15),
            (0.035 - b, 0.24),
            (0.02 - b, 0.45),
            (0.025 - b, 0.80),
            (0.03 - b, 1.40),
        ]
    )
    right = catmull_rom(half, 8, closed=False)
    return np.concatenate([right, mirror(right)[::-1]])


def rib_curves(p: Patient) -> list[tuple[np.ndarray, float, float]]:
    """(canonical polyline, width, weight) of the posterior and anterior ribs of both sides.

    Posterior ribs arch up from the spine and fall along the lateral wall; anterior ribs run from the lateral wall
    obliquely down towards the midline and are fainter.
    """
    curves: list[tuple[np.ndarray, float, float]] = []
    wall = p.wall_x - 0.012
    for k in range(10):
        y0 = p.apex_y + 0.005 + p.rib_spacing * k
        width = 0.014 + 0.001 * k
        t = np.linspace(0.0, 1.0, 24)
        reach = 0.47 - wall if k else 0.26  # the first rib is short and rings the apex
        x = 0.47 - reach * t
        y = y0 - (0.035 + 0.002 * k) * np.sin(np.pi * t * 0.8) + (0.06 + 0.008 * k) * t**2.5
        posterior = np.stack([x, y], 1)
        if k:
            tail = np.array([(wall + 0.002, y[-1] + 0.04), (wall + 0.01, y[-1] + 0.08)])
            posterior = np.concatenate([posterior, tail])
        curves.append((posterior, width, 1.0))
        if 1 <= k <= 6:
            ya = y[-1] + 0.03
            anterior = catmull_rom(np.array([(wall + 0.005, ya), (0.19, ya + 0.05), (0.27, ya + 0.11), (0.33, ya + 0.14)]),
                                   8, closed=False)
            curves.append((anterior, width * 1.15, 0.45))
    both = []
    for curve, width, weight in curves:
        both.append((curve, width, weight))
        both.append((mirror(curve) + np.array([0.0, 0.008]), width, weight))
    return both


def clavicle_curves(p: Patient) -> list[np.ndarray]:
    y = p.apex_y + 0.06
    right = catmull_rom(np.array([(0.455, y + 0.025), (0.40, y + 0.018), (0.31, y + 0.002), (0.22, y - 0.03),
                                  (0.17, y - 0.04), (0.13, y - 0.035)]), 10, closed=False)
    return [right, mirror(right)]


def airway_curves(p: Patient) -> list[tuple[np.ndarray, float]]:
    """Trachea and main bronchi (canonical polyline, width): dark air columns in the mediastinum."""
    carina = (0.5, p.apex_y + 0.22)
    trachea = np.array([(0.5, -0.1), (0.5, p.apex_y), carina])
    right = catmull_rom(np.array([carina, (0.46, carina[1] + 0.04), (0.42, carina[1] + 0.08)]), 6, closed=False)
    left = catmull_rom(np.array([carina, (0.545, carina[1] + 0.05), (0.58, carina[1] + 0.09)]), 6, closed=False)
    return [(trachea, 0.04), (right, 0.022), (left, 0.02)]


def vessel_segments(rng: np.random.Generator, hilum: tuple[float, float], lateral: float) -> list[tuple]:
    """Branching vessel tree from a hilum: (x0, y0, x1, y1, width, weight) canonical segments, coarse first.

    ``lateral`` is -1 for the image-left lung (branches head left) and +1 for the image-right one.
    """
    segments = []
    trunk_angles = np.array([-95.0, -120.0, -145.0, -170.0, 160.0, 135.0, 110.0])  # image-left lung, deg from +x
    if lateral > 0:
        trunk_angles = 180.0 - trunk_angles
    stack = [(hilum[0], hilum[1], math.radians(a + rng.uniform(-10, 10)), rng.uniform(0.05, 0.075), 0.008, 1.0, 0)
             for a in trunk_angles]
    while stack:
        x, y, angle, length, width, weight, depth = stack.pop()
        # a slightly tortuous segment: two halves with a small bend
        bend = angle + rng.uniform(-0.3, 0.3)
        xm, ym = x + 0.5 * length * math.cos(angle), y + 0.5 * length * math.sin(angle)
        x1, y1 = xm + 0.5 * length * math.cos(bend), ym + 0.5 * length * math.sin(bend)
        segments.append((x, y, xm, ym, width, weight))
        segments.append((xm, ym, x1, y1, width * 0.92, weight * 0.95))
        if depth < 6:
            for sign in (-1.0, 1.0):
                spread = math.radians(rng.uniform(14, 32))
                stack.append((x1, y1, bend + sign * spread, length * rng.uniform(0.72, 0.86), width * 0.72,
                              weight * 0.86, depth + 1))
    return segments


# ----------------------------------------------------------------------------------------------------------------
# Pneumothorax: crescents along the pleural margin.


@dataclass(frozen=True)
class Crescent:
    """One pneumothorax region: which lung (0 = image left), centre angle and half-width along the margin, area."""

    lung: int
    centre_deg: float  # 0 = apex, 90 = lateral wall, 150 = costophrenic angle
    half_width_deg: float
    area_fraction: float


def sample_crescents(rng: np.random.Generator) -> list[Crescent]:
    """Region count, total area, side and place along the margin, following the real mask statistics."""
    counts, probs = zip(*REGION_COUNT_PROBS.items())
    n = int(rng.choice(counts, p=probs))
    total = float(np.clip(math.exp(rng.normal(AREA_LOG_MEDIAN, AREA_LOG_SIGMA)), *AREA_CLIP))
    shares = rng.dirichlet(np.full(n, 2.0)) if n > 1 else np.ones(1)
    first_lung = 0 if rng.random() < FIRST_REGION_IMAGE_LEFT else 1
    crescents: list[Crescent] = []
    for k in range(n):
        area = total * float(shares[k])
        lung = first_lung if k == 0 or rng.random() > OTHER_LUNG_PROBABILITY else 1 - first_lung
        for attempt in range(40):  # regions of one lung are kept apart so that each is its own CSV row
            if attempt == 20:
                lung = 1 - lung
            taken = [c for c in crescents if c.lung == lung]
            centre = rng.uniform(-20, 30) if rng.random() < APICAL_PROBABILITY else rng.uniform(40, 150)
            # larger regions need a longer stretch of the margin, or the lung is too narrow to hold them
            half = (rng.uniform(25, 55) if n == 1 else rng.uniform(15, 30)) + 900.0 * area
            half = min(half, 85.0)
            # keep most of the stretch on the apical/lateral margin, so the crescent tapers at both ends
            centre = float(np.clip(centre, PLEURAL_ARC_DEG[0] + 0.5 * half, PLEURAL_ARC_DEG[1] - 0.5 * half))
            if all(abs(centre - c.centre_deg) > half + c.half_width_deg + 10 for c in taken):
                crescents.append(Crescent(lung, centre, half, area))
                break
    return crescents


def _lung_angles(crop: np.ndarray, lateral: float) -> np.ndarray:
    """Angle (deg) of every pixel of a cropped lung seen from a point in its lower middle: 0 at the apex, 90 at
    the lateral wall, ~150 at the costophrenic angle, whatever the lung's height; negative towards the midline."""
    ys, xs = np.nonzero(crop)
    cy = ys.min() + 0.62 * (ys.max() - ys.min())
    cx = xs.mean()
    yy, xx = np.mgrid[0 : crop.shape[0], 0 : crop.shape[1]].astype(np.float32)
    return np.degrees(np.arctan2(lateral * (xx - cx), cy - yy))


def crescent_region(lung: np.ndarray, lateral: float, crescent: Crescent) -> np.ndarray:
    """The crescent's binary mask, grown inwards from a stretch of the pleural margin (apex and lateral wall).

    Each lung pixel takes the thickness allowed at its nearest margin point: full in the middle of the stretch,
    tapering to nothing at its ends. The full thickness is found by bisection so that the area hits the target.
    """
    ys, xs = np.nonzero(lung)
    pad = 2
    box = (slice(max(ys.min() - pad, 0), ys.max() + pad + 1), slice(max(xs.min() - pad, 0), xs.max() + pad + 1))
    crop = np.ascontiguousarray(lung[box])
    angle = _lung_angles(crop, lateral)
    margin = (crop > 0) & (cv2.erode(crop, np.ones((3, 3), np.uint8), borderValue=0) == 0)
    low_end = max(crescent.centre_deg - crescent.half_width_deg, PLEURAL_ARC_DEG[0])
    high_end = min(crescent.centre_deg + crescent.half_width_deg, PLEURAL_ARC_DEG[1])
    arc = margin & (angle > low_end) & (angle < high_end)
    region = np.zeros_like(lung)
    if not arc.any():
        return region
    distance, labels = cv2.distanceTransformWithLabels((~arc).astype(np.uint8), cv2.DIST_L2, 5,
                                                       labelType=cv2.DIST_LABEL_PIXEL)
    arc_angle = np.zeros(int(labels.max()) + 1, np.float32)
    arc_angle[labels[arc]] = angle[arc]
    offset = (arc_angle[labels] - crescent.centre_deg) / crescent.half_width_deg
    # a steep taper: thick in the middle, running out to a sliver at both ends like a real crescent
    profile = np.where(np.abs(offset) < 1.0, np.cos(0.5 * np.pi * np.clip(offset, -1, 1)) ** CRESCENT_TAPER, 0.0)
    # Nearest-point thickness is constant over each margin pixel's Voronoi cell: smooth it, or the inner border
    # comes out serrated where cells of far-apart margin points meet (inside the apex)
    profile = blur(profile.astype(np.float32), 0.01 * lung.shape[0])
    inside = (crop > 0) & (profile > 1e-3)
    target = crescent.area_fraction * lung.size
    # a crescent is much longer than thick: an area the stretch cannot hold is left smaller instead
    low, high = 0.0, min(float(distance[crop > 0].max()), MAX_THICKNESS_PER_ARC * np.count_nonzero(arc))
    for _ in range(18):
        thickness = 0.5 * (low + high)
        area = np.count_nonzero(inside & (distance + 0.5 < thickness * profile))  # +0.5: measured to pixel centres
        low, high = (thickness, high) if area < target else (low, thickness)
    region[box] = inside & (distance + 0.5 < high * profile)
    return region


# ----------------------------------------------------------------------------------------------------------------
# Rendering.


@dataclass(frozen=True)
class Phantom:
    image: np.ndarray  # uint8 (S, S)
    regions: list[np.ndarray]  # one uint8 mask per pneumothorax region (a CSV row each)
    patient: Patient
    lung_fields: np.ndarray  # uint8 (S, S): the visible lungs (not behind the heart), pneumothorax included

    @property
    def mask(self) -> np.ndarray:
        if not self.regions:
            return np.zeros_like(self.image)
        return np.bitwise_or.reduce(np.stack(self.regions), axis=0)


def render_phantom(size: int, rng: np.random.Generator, positive: bool) -> Phantom:
    """One phantom radiograph and its pneumothorax regions (none when ``positive`` is false)."""
    patient = sample_patient(rng)
    frame = Frame.make(size, patient.scale, patient.angle, patient.shift)
    unit = frame.length(1.0) / 1024.0  # pixels per pixel-at-1024: keeps blur and line widths resolution-free

    body = fill_polygon(frame, body_outline(patient)).astype(np.float32)
    heart = fill_polygon(frame, heart_outline(patient))
    lungs = [fill_polygon(frame, catmull_rom(o, 16, closed=True)) for o in
             (right_lung_outline(patient), left_lung_outline(patient))]
    visible_lungs = [lung & (1 - heart) for lung in lungs]

    crescents = sample_crescents(rng) if positive else []
    regions = [crescent_region(visible_lungs[c.lung], -1.0 if c.lung == 0 else 1.0, c) for c in crescents]
    regions = [r for r in regions if r.any()]
    pneumothorax = np.zeros((size, size), np.uint8)
    for region in regions:
        pneumothorax |= region

    density = soft_tissue(frame, patient, body, heart, unit)
    lung_field = (visible_lungs[0] | visible_lungs[1]).astype(np.float32)
    air = blur(lung_field, 4.0 * unit)
    depth = wide_blur(lung_field, 45.0 * unit)  # the lung is thinner at its margins: they look less dark
    # pleural air reaches right up to the chest wall and replaces the lung: full air, no soft margin
    free_air = blur(pneumothorax.astype(np.float32), 0.7 * unit)
    air = np.maximum(air, free_air)
    depth = np.maximum(depth, 0.7 * free_air)
    density -= 0.22 * air + 0.2 * depth * air
    density += lung_markings(frame, patient, rng, visible_lungs, pneumothorax, unit)
    density += bones(frame, patient, air, unit) * blur(body, 3.0 * unit)  # no bone outside the body
    density += pleural_line(pneumothorax, visible_lungs, unit)
    image = expose(density, patient, rng, unit)
    return Phantom(image, regions, patient, visible_lungs[0] | visible_lungs[1])


def soft_tissue(frame: Frame, p: Patient, body: np.ndarray, heart: np.ndarray, unit: float) -> np.ndarray:
    """Projected soft-tissue thickness: thick mediastinum and abdomen, thin flanks, a denser heart, dark airways
    and a gastric air bubble under the left dome."""
    u, v = frame.canonical_grid()
    across = np.clip(1.0 - ((u - 0.5) / (0.5 + p.body_width)) ** 2, 0.0, 1.0)
    thickness = 0.30 + 0.36 * across**0.7
    thickness += 0.10 * np.clip((v - p.dome_y) / 0.10, 0.0, 1.0)  # liver and abdomen below the diaphragm
    thickness += 0.06 * np.clip((0.22 - v) / 0.12, 0.0, 1.0) * np.clip((np.abs(u - 0.5) - 0.12) / 0.1, 0.0, 1.0)
    density = blur(body, 4.0 * unit) * thickness
    density += 0.05 * blur(heart.astype(np.float32), 12.0 * unit)
    airways = np.zeros_like(density)
    for curve, width in airway_curves(p):
        draw_curve(airways, frame, curve, width, 1.0)
    bubble = fill_polygon(frame, ellipse((0.66, p.dome_y + 0.09), (0.05, 0.03), 10.0)).astype(np.float32)
    density -= 0.07 * blur(airways, 6.0 * unit) + 0.04 * blur(bubble, 8.0 * unit)
    return density


def lung_markings(
    frame: Frame,
    p: Patient,
    rng: np.random.Generator,
    lungs: Sequence[np.ndarray],
    pneumothorax: np.ndarray,
    unit: float,
) -> np.ndarray:
    """Parenchyma, interstitial texture and vessels fading to the periphery: all absent inside a pneumothorax."""
    size = frame.size
    vessels = np.zeros((size, size), np.float32)
    hila = ((0.41, 0.43), (0.59, 0.42))
    for side, hilum in enumerate(hila):
        segments = vessel_segments(rng, hilum, -1.0 if side == 0 else 1.0)
        for x0, y0, x1, y1, width, weight in reversed(segments):
            draw_curve(vessels, frame, np.array([(x0, y0), (x1, y1)]), max(width, 0.0015), weight)
    vessels = blur(vessels, 2.0 * unit)
    hilar = np.zeros_like(vessels)  # the large central vessels: soft blobs at the hila
    for hilum in hila:
        hilar += fill_polygon(frame, ellipse(hilum, (0.035, 0.055), 0.0))
    vessels = np.maximum(vessels, 0.8 * blur(hilar, 12.0 * unit))
    texture_size = max(8, size // 6)
    texture = cv2.resize(rng.standard_normal((texture_size, texture_size)).astype(np.float32), (size, size),
                         interpolation=cv2.INTER_CUBIC)
    lung_field = blur((lungs[0] | lungs[1]).astype(np.float32), 3.0 * unit)
    markings_absent = blur(pneumothorax.astype(np.float32), 1.0 * unit)
    present = lung_field * (1.0 - markings_absent)
    return present * (0.05 + 0.11 * p.vessel_gain * vessels + 0.012 * texture) - 0.035 * markings_absent


def bones(frame: Frame, p: Patient, air: np.ndarray, unit: float) -> np.ndarray:
    """Spine, ribs with a brighter cortex, and clavicles."""
    size = frame.size
    ribs = np.zeros((size, size), np.float32)
    for curve, width, weight in rib_curves(p):
        draw_curve(ribs, frame, curve, width, weight)
    cortex = ribs - cv2.erode(ribs, np.ones((3, 3), np.uint8), iterations=max(1, int(round(2.5 * unit))))
    edge = 0.6 * min(1.0, unit)  # below ~1024 px the cortex is sub-pixel: let it fade rather than outline ribs
    ribs = blur(0.6 * ribs + edge * cortex, 1.5 * unit)
    clavicles = np.zeros((size, size), np.float32)
    for curve in clavicle_curves(p):
        draw_curve(clavicles, frame, curve, 0.03, 1.0)
    clavicle_cortex = clavicles - cv2.erode(clavicles, np.ones((3, 3), np.uint8), iterations=max(1, int(round(3 * unit))))
    u, v = frame.canonical_grid()
    spine_band = np.clip(1.0 - np.abs(u - 0.5) / 0.045, 0.0, 1.0) ** 0.4
    discs = 0.9 + 0.1 * np.clip(np.cos(2 * np.pi * (v - p.apex_y) / (p.rib_spacing * 0.95)) * 3.0, -1.0, 1.0)
    spine = blur(spine_band * discs, 2.0 * unit)
    return (0.08 * ribs * (0.35 + 0.65 * air) + 0.09 * blur(0.6 * clavicles + edge * clavicle_cortex, 1.5 * unit)
            + 0.06 * spine)


def pleural_line(pneumothorax: np.ndarray, lungs: Sequence[np.ndarray], unit: float) -> np.ndarray:
    """The visceral pleural line: a thin bright edge on the lung side of the pneumothorax."""
    if not pneumothorax.any():
        return np.zeros(pneumothorax.shape, np.float32)
    width = max(1, int(round(2.0 * unit)))
    grown = cv2.dilate(pneumothorax, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1)))
    line = (grown > 0) & (pneumothorax == 0) & ((lungs[0] | lungs[1]) > 0)
    return 0.10 * blur(line.astype(np.float32), 0.8 * unit)


def expose(density: np.ndarray, p: Patient, rng: np.random.Generator, unit: float) -> np.ndarray:
    """Density -> 8-bit MONOCHROME2 pixel values: contrast/exposure/gamma per patient, slight blur, quantum noise."""
    linear = (density - 0.4) * 1.35 * p.contrast + 0.45 + p.exposure
    # a film-like shoulder instead of clipping: dense regions stay just below white and keep some detail
    knee = 0.8
    linear = np.where(linear > knee, knee + (1 - knee) * np.tanh((linear - knee) / (1 - knee)), linear)
    level = np.clip(linear, 0.0, 1.0) ** p.gamma
    level = blur(level.astype(np.float32), 0.8 * unit)
    # relative noise is larger where fewer photons arrive; a smaller image averages more of it away
    sigma = (0.006 + 0.014 * np.sqrt(level)) * p.noise * min(1.0, unit) ** 0.5
    noise = rng.standard_normal(level.shape, dtype=np.float32)
    noisy = level + blur(noise, 0.6 * unit) * sigma
    return np.round(np.clip(noisy, 0.0, 1.0) * 255.0).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------------
# The dataset.


@dataclass(frozen=True)
class PhantomRecord:
    index: int
    image_id: str
    dicom_path: str  # relative to the tree
    codes: list[str]  # one per region, or ["-1"]
    area_fraction: float
    centroid_y: float
    centroid_x: float
    touches_both_halves: bool
    seconds: float


def phantom_uids(seed: int, index: int) -> tuple[str, str, str]:
    """Study, series and SOP instance UIDs, reproducible from the seed and image index."""
    return tuple(generate_uid(entropy_srcs=["dfgan-phantom", str(seed), str(index), kind])
                 for kind in ("study", "series", "instance"))


def _make_one(job: tuple[Path, int, int, int, bool, int | None]) -> PhantomRecord:
    out_dir, seed, index, size, positive, jpeg_quality = job
    start = time.perf_counter()
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    phantom = render_phantom(size, rng, positive)
    study, series, image_id = phantom_uids(seed, index)
    relative = Path(DICOM_DIR) / study / series / f"{image_id}.dcm"
    write_dicom(out_dir / relative, phantom.image, image_id, study, series, patient_id=f"phantom-{seed}-{index}",
                patient_sex=phantom.patient.sex, patient_age=phantom.patient.age, jpeg_quality=jpeg_quality)
    mask = phantom.mask
    codes = [rle_encode(r) for r in phantom.regions] or ["-1"]
    ys, xs = np.nonzero(mask)
    half = size // 2
    return PhantomRecord(
        index=index,
        image_id=image_id,
        dicom_path=relative.as_posix(),
        codes=codes,
        area_fraction=float(mask.mean()),
        centroid_y=float(ys.mean() / size) if len(ys) else float("nan"),
        centroid_x=float(xs.mean() / size) if len(xs) else float("nan"),
        touches_both_halves=bool(len(xs) and xs.min() < half <= xs.max()),
        seconds=time.perf_counter() - start,
    )


def generate_phantom(
    out_dir: str | Path,
    *,
    count: int,
    positive_fraction: float,
    image_size: int,
    seed: int,
    workers: int = 1,
    jpeg_fraction: float = 0.0,
    jpeg_quality: int = 95,
) -> dict[str, Any]:
    """Write ``count`` phantoms as a SIIM-ACR stage-1 tree under ``out_dir``; return a summary of the masks."""
    out_dir = Path(out_dir)
    if count < 1 or not 0.0 <= positive_fraction <= 1.0 or not 0.0 <= jpeg_fraction <= 1.0:
        raise ValueError(f"phantom: need count >= 1 and fractions in [0, 1], got {count}, {positive_fraction}, "
                         f"{jpeg_fraction}")
    plan = np.random.default_rng(np.random.SeedSequence([seed, count, 0x5EED]))
    positive = np.zeros(count, bool)
    positive[plan.permutation(count)[: int(round(count * positive_fraction))]] = True
    compressed = plan.random(count) < jpeg_fraction
    jobs = [(out_dir, seed, i, image_size, bool(positive[i]), jpeg_quality if compressed[i] else None)
            for i in range(count)]
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    bar = dict(total=count, desc="phantom", unit="img", disable=progress_disabled())
    if workers > 1:
        # No cv2.setNumThreads(1) initializer: calling it in a forked child can deadlock on the parent's pool.
        with worker_pool(workers) as pool:
            records = list(tqdm(pool.map(_make_one, jobs, chunksize=max(1, count // (8 * workers))), **bar))
    else:
        records = [_make_one(job) for job in tqdm(jobs, **bar)]
    write_rle_csv(out_dir / CSV_NAME, records)
    summary = summarize(records, image_size)
    summary["seconds_total"] = round(time.perf_counter() - started, 2)
    summary["jpeg_compressed"] = int(compressed.sum())
    return summary


def write_rle_csv(path: Path, records: Sequence[PhantomRecord]) -> None:
    """Stage-1 quirks: the header's space after the comma, every value with a leading space, one row per region."""
    lines = [CSV_HEADER] + [f"{r.image_id}, {code}" for r in records for code in r.codes]
    path.write_text("\n".join(lines) + "\n")


def summarize(records: Sequence[PhantomRecord], image_size: int) -> dict[str, Any]:
    """Counts and mask statistics, side by side with the real ones they imitate."""
    positives = [r for r in records if r.codes != ["-1"]]
    areas = np.array([r.area_fraction for r in positives])
    heights = np.array([r.centroid_y for r in positives])
    regions = np.array([len(r.codes) for r in positives])

    def q(values: np.ndarray, p: float) -> float | None:
        return round(float(np.percentile(values, p)), 5) if len(values) else None

    return {
        "images": len(records),
        "positives": len(positives),
        "negatives": len(records) - len(positives),
        "csv_rows": sum(len(r.codes) for r in records),
        "image_size": image_size,
        "area_fraction": {"p5": q(areas, 5), "p25": q(areas, 25), "median": q(areas, 50), "p75": q(areas, 75),
                          "p95": q(areas, 95)},
        "regions": {"1": _share(regions == 1), "2": _share(regions == 2), "3+": _share(regions >= 3)},
        "centroid_y_median": q(heights, 50),
        "centroid_y_p10_p90": (q(heights, 10), q(heights, 90)),
        "left_half": _share(np.array([r.centroid_x < 0.5 for r in positives])),
        "both_halves": _share(np.array([r.touches_both_halves for r in positives])),
        "seconds_per_image": round(float(np.mean([r.seconds for r in records])), 3),
        "real": REAL_MASK_STATS,
    }


def _share(flags: np.ndarray) -> float | None:
    return round(float(np.mean(flags)), 3) if len(flags) else None


# ----------------------------------------------------------------------------------------------------------------
# A contact sheet, read back through the real ingestion path.


def render_contact_sheet(
    tree_dir: str | Path,
    out_png: str | Path,
    n: int,
    *,
    rle_csv: str = CSV_NAME,
    dicom_glob: str = f"{DICOM_DIR}/**/*.dcm",
    columns: int = 4,
    tile: int = 256,
) -> Path:
    """Read the first ``n`` images of a SIIM-ACR tree with the real reader (DICOM + RLE) and draw them in a grid,
    pneumothorax outlined in red."""
    tree_dir = Path(tree_dir)
    table = read_rle_table(tree_dir / rle_csv)
    dicoms = find_dicoms(tree_dir, dicom_glob)
    tiles = []
    for image_id, rows in table.groupby("ImageId", sort=False):
        if len(tiles) >= n:
            break
        if image_id not in dicoms:
            continue
        image = read_dicom(dicoms[image_id])
        mask = decode_union(rows["EncodedPixels"], *image.shape, image_id, rows=rows["csv_row"].tolist())
        tile_image = outline(image, mask)
        label = f"{len(rows) if mask.any() else 0} reg, {100 * mask.mean():.2f}%"
        scale = image.shape[0] / tile
        cv2.putText(tile_image, label, (int(6 * scale), int(18 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale,
                    (255, 255, 0), max(1, int(scale)))
        tiles.append(tile_image)
    if not tiles:
        raise ValueError(f"render_contact_sheet: no images found in {tree_dir}")
    rows_of_tiles = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    return save_grid(rows_of_tiles, out_png, tile=tile)
