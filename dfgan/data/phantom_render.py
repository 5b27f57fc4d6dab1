"""Rendering one phantom radiograph: pneumothorax crescents along the pleural margin, soft tissue, lung markings,
bones, the pleural line and the exposure, from one patient's anatomy (:mod:`dfgan.data.phantom_anatomy`).

A pneumothorax is a crescent along the apical/lateral pleural margin of a lung where lung markings are absent,
bounded on the lung side by a thin bright visceral pleural line; the mask is exactly that crescent. Its statistics
follow those measured on the real table (see ``REAL_MASK_STATS``).

The pixels are the same bytes on every x86 CPU (issue 27, tests/test_phantom_determinism.py): fields are float64
and built only from IEEE-754 basic operations; powers, exponentials and trigonometry come from
:mod:`dfgan.core.portable_math` (not numpy's or the C library's, which pick vector or FMA code by CPU); blurs and
resampling from :mod:`dfgan.core.portable_filters` (not OpenCV's float kernels); OpenCV is used only where it
works in integers (polygon and line rasterization, erosion, dilation, the distance transform, the 16-bit
fixed-point Gaussian).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from dfgan.core import portable_math as pm
from dfgan.core.portable_filters import gaussian_blur, resample, wide_blur
from dfgan.data.phantom_anatomy import (
    Frame,
    Patient,
    airway_curves,
    body_outline,
    catmull_rom,
    clavicle_curves,
    draw_curve,
    ellipse,
    fill_polygon,
    heart_outline,
    left_lung_outline,
    rib_curves,
    right_lung_outline,
    sample_patient,
    vessel_segments,
)

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
AREA_LOG_MEDIAN = float(pm.log(0.0087))
AREA_LOG_SIGMA = 1.07  # (ln p95 - ln median) / 1.645 ~ 1.04 and (ln median - ln p5) / 1.645 ~ 1.11
AREA_CLIP = (0.0006, 0.09)
FIRST_REGION_IMAGE_LEFT = 0.6  # the patient's right lung
OTHER_LUNG_PROBABILITY = 0.45  # a further region lies in the other lung
APICAL_PROBABILITY = 0.68  # a region's centre lies on the apical rather than the lateral margin
CRESCENT_TAPER = 1.3  # exponent of the thickness profile along the margin (cos^k)
MAX_THICKNESS_PER_ARC = 0.3  # the thickest point of a crescent, as a share of its length along the margin
PLEURAL_ARC_DEG = (-35.0, 155.0)  # the apical and lateral margin; beyond lie the mediastinum and the diaphragm
NOISE_CLIP = 8.0  # standard deviations of the quantum noise kept (beyond: once in 1e15 pixels)


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
    total = float(np.clip(pm.exp(rng.normal(AREA_LOG_MEDIAN, AREA_LOG_SIGMA)), *AREA_CLIP))
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
    yy, xx = np.mgrid[0 : crop.shape[0], 0 : crop.shape[1]].astype(np.float64)
    return pm.degrees(pm.atan2(lateral * (xx - cx), cy - yy))


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
    arc_angle = np.zeros(int(labels.max()) + 1, np.float64)
    arc_angle[labels[arc]] = angle[arc]
    offset = (arc_angle[labels] - crescent.centre_deg) / crescent.half_width_deg
    # a steep taper: thick in the middle, running out to a sliver at both ends like a real crescent
    taper = pm.unit_power(np.maximum(pm.cos(0.5 * pm.PI * np.clip(offset, -1, 1)), 0.0), CRESCENT_TAPER)
    profile = np.where(np.abs(offset) < 1.0, taper, 0.0)
    # Nearest-point thickness is constant over each margin pixel's Voronoi cell: smooth it, or the inner border
    # comes out serrated where cells of far-apart margin points meet (inside the apex)
    profile = gaussian_blur(profile, 0.01 * lung.shape[0])
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

    body = fill_polygon(frame, body_outline(patient))
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
    lung_field = visible_lungs[0] | visible_lungs[1]
    air = gaussian_blur(lung_field, 4.0 * unit)
    depth = wide_blur(lung_field, 45.0 * unit)  # the lung is thinner at its margins: they look less dark
    # pleural air reaches right up to the chest wall and replaces the lung: full air, no soft margin
    free_air = gaussian_blur(pneumothorax, 0.7 * unit)
    air = np.maximum(air, free_air)
    depth = np.maximum(depth, 0.7 * free_air)
    density -= 0.22 * air + 0.2 * depth * air
    density += lung_markings(frame, patient, rng, visible_lungs, pneumothorax, unit)
    density += bones(frame, patient, air, unit) * gaussian_blur(body, 3.0 * unit)  # no bone outside the body
    density += pleural_line(pneumothorax, visible_lungs, unit)
    image = expose(density, patient, rng, unit)
    return Phantom(image, regions, patient, visible_lungs[0] | visible_lungs[1])


def soft_tissue(frame: Frame, p: Patient, body: np.ndarray, heart: np.ndarray, unit: float) -> np.ndarray:
    """Projected soft-tissue thickness: thick mediastinum and abdomen, thin flanks, a denser heart, dark airways
    and a gastric air bubble under the left dome."""
    u, v = frame.canonical_grid
    offset = (u - 0.5) / (0.5 + p.body_width)
    across = np.clip(1.0 - offset * offset, 0.0, 1.0)
    thickness = 0.30 + 0.36 * pm.unit_power(across, 0.7)
    thickness += 0.10 * np.clip((v - p.dome_y) / 0.10, 0.0, 1.0)  # liver and abdomen below the diaphragm
    thickness += 0.06 * np.clip((0.22 - v) / 0.12, 0.0, 1.0) * np.clip((np.abs(u - 0.5) - 0.12) / 0.1, 0.0, 1.0)
    density = gaussian_blur(body, 4.0 * unit) * thickness
    density += 0.05 * gaussian_blur(heart, 12.0 * unit)
    airways = np.zeros(density.shape, np.float32)
    for curve, width in airway_curves(p):
        draw_curve(airways, frame, curve, width, 1.0)
    bubble = fill_polygon(frame, ellipse((0.66, p.dome_y + 0.09), (0.05, 0.03), 10.0))
    density -= 0.07 * gaussian_blur(airways, 6.0 * unit) + 0.04 * gaussian_blur(bubble, 8.0 * unit)
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
    vessels = gaussian_blur(vessels, 2.0 * unit)
    hilar = np.zeros((size, size), np.uint8)  # the large central vessels: soft blobs at the hila
    for hilum in hila:
        hilar |= fill_polygon(frame, ellipse(hilum, (0.035, 0.055), 0.0))
    vessels = np.maximum(vessels, 0.8 * gaussian_blur(hilar, 12.0 * unit))
    texture_size = max(8, size // 6)
    texture = resample(rng.standard_normal((texture_size, texture_size)), (size, size), "cubic")
    lung_field = gaussian_blur(lungs[0] | lungs[1], 3.0 * unit)
    markings_absent = gaussian_blur(pneumothorax, 1.0 * unit)
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
    ribs = gaussian_blur(0.6 * ribs + edge * cortex, 1.5 * unit, high=1.2)  # cortex: up to 0.6 + 0.6
    clavicles = np.zeros((size, size), np.float32)
    for curve in clavicle_curves(p):
        draw_curve(clavicles, frame, curve, 0.03, 1.0)
    clavicle_cortex = clavicles - cv2.erode(clavicles, np.ones((3, 3), np.uint8), iterations=max(1, int(round(3 * unit))))
    u, v = frame.canonical_grid
    spine = np.zeros((size, size))
    band = np.abs(u - 0.5) < 0.045  # the spine's band; its profile and discs are computed there only
    spine_band = pm.unit_power(1.0 - np.abs(u[band] - 0.5) / 0.045, 0.4)
    discs = 0.9 + 0.1 * np.clip(pm.cos(2 * pm.PI * (v[band] - p.apex_y) / (p.rib_spacing * 0.95)) * 3.0, -1.0, 1.0)
    spine[band] = spine_band * discs
    spine = gaussian_blur(spine, 2.0 * unit)
    clavicles = gaussian_blur(0.6 * clavicles + edge * clavicle_cortex, 1.5 * unit, high=1.2)
    return 0.08 * ribs * (0.35 + 0.65 * air) + 0.09 * clavicles + 0.06 * spine


def pleural_line(pneumothorax: np.ndarray, lungs: Sequence[np.ndarray], unit: float) -> np.ndarray:
    """The visceral pleural line: a thin bright edge on the lung side of the pneumothorax."""
    if not pneumothorax.any():
        return np.zeros(pneumothorax.shape)
    width = max(1, int(round(2.0 * unit)))
    grown = cv2.dilate(pneumothorax, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1)))
    line = (grown > 0) & (pneumothorax == 0) & ((lungs[0] | lungs[1]) > 0)
    return 0.10 * gaussian_blur(line, 0.8 * unit)


def expose(density: np.ndarray, p: Patient, rng: np.random.Generator, unit: float) -> np.ndarray:
    """Density -> 8-bit MONOCHROME2 pixel values: contrast/exposure/gamma per patient, slight blur, quantum noise."""
    linear = (density - 0.4) * 1.35 * p.contrast + 0.45 + p.exposure
    # a film-like shoulder instead of clipping: dense regions stay just below white and keep some detail
    knee = 0.8
    shoulder = linear > knee
    linear[shoulder] = knee + (1 - knee) * pm.tanh((linear[shoulder] - knee) / (1 - knee))
    level = pm.unit_power(np.clip(linear, 0.0, 1.0), p.gamma)
    level = gaussian_blur(level, 0.8 * unit)
    # relative noise is larger where fewer photons arrive; a smaller image averages more of it away
    sigma = (0.006 + 0.014 * np.sqrt(level)) * p.noise * math.sqrt(min(1.0, unit))
    noise = gaussian_blur(rng.standard_normal(level.shape), 0.6 * unit, low=-NOISE_CLIP, high=NOISE_CLIP)
    noisy = level + noise * sigma
    return np.round(np.clip(noisy, 0.0, 1.0) * 255.0).astype(np.uint8)
