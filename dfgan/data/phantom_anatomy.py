"""The phantom's anatomy: canonical shapes of one patient (body, lungs, heart, ribs, clavicles, airways, vessels) and
the helpers that map them to pixels and draw them.

Shapes are point lists in a canonical unit frame (x right, y down), mapped to pixels per patient by a :class:`Frame`.
Used by :mod:`dfgan.data.phantom_render`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from dfgan.core import portable_math

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
    t2, t3 = t * t, t * t * t  # products, not numpy's power (which calls the C library's pow)
    curves = []
    for i in range(n_segments):
        p0, p1, p2, p3 = ext[i], ext[i + 1], ext[i + 2], ext[i + 3]
        curves.append(
            0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t3)
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
    """Canonical unit coordinates -> pixel coordinates (scale, small rotation, shift) for one patient.

    Every product is written out (no matrix product, which BLAS computes with CPU-dependent kernels), and the
    rotation's sine and cosine come from :mod:`dfgan.core.portable_math`, so pixel positions are the same bits on
    every CPU.
    """

    size: int
    matrix: tuple[tuple[float, float, float], tuple[float, float, float]]  # 2x3 affine

    @staticmethod
    def make(size: int, scale: float, angle_deg: float, shift: tuple[float, float]) -> "Frame":
        sin_a, cos_a = portable_math.sin_cos_scalar(portable_math.radians(float(angle_deg)))
        cos, sin = cos_a * scale * size, sin_a * scale * size
        # the canonical centre (0.5, 0.5) lands on the image centre, shifted
        x0 = size * (0.5 + shift[0]) - (cos * 0.5 - sin * 0.5)
        y0 = size * (0.5 + shift[1]) - (sin * 0.5 + cos * 0.5)
        return Frame(size, ((cos, -sin, x0), (sin, cos, y0)))

    @functools.cached_property
    def _columns(self) -> np.ndarray:
        return np.array(self.matrix).T  # rows: the x column, the y column, the offset

    def px(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        columns = self._columns
        return p[:, :1] * columns[0] + p[:, 1:] * columns[1] + columns[2]  # x*a + y*b + c, x*d + y*e + f

    @functools.cached_property
    def canonical_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Canonical (u, v) of every pixel centre, as float64 (H, W) arrays (computed once per frame)."""
        (a, b, c), (d, e, f) = self.matrix
        det = a * e - b * d
        ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
        ic, if_ = -(ia * c + ib * f), -(id_ * c + ie * f)
        ys, xs = np.mgrid[0 : self.size, 0 : self.size].astype(np.float64)
        return ia * xs + ib * ys + ic, id_ * xs + ie * ys + if_

    def length(self, canonical: float) -> float:
        a, d = self.matrix[0][0], self.matrix[1][0]
        return canonical * math.sqrt(a * a + d * d)  # sqrt is correctly rounded: the same bits everywhere


SUBPIXEL_BITS = 4  # cv2 drawing with fractional coordinates: smooth edges even at 256 px


def _fixed(points_px: np.ndarray) -> np.ndarray:
    return np.round(points_px * (1 << SUBPIXEL_BITS)).astype(np.int32)


def fill_polygon(frame: Frame, points: np.ndarray) -> np.ndarray:
    """A binary uint8 mask of a closed canonical polygon (OpenCV rasterizes integer coordinates in integers)."""
    canvas = np.zeros((frame.size, frame.size), np.uint8)
    cv2.fillPoly(canvas, [_fixed(frame.px(points))], 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    return canvas


def draw_curve(canvas: np.ndarray, frame: Frame, points: np.ndarray, width: float, value: float) -> None:
    """Draw an open canonical polyline of canonical ``width`` onto a float32 canvas (in place; OpenCV draws on a
    float canvas without anti-aliasing, in integer coordinates)."""
    thickness = max(1, int(round(frame.length(width))))
    cv2.polylines(canvas, [_fixed(frame.px(points))], False, float(value), thickness, cv2.LINE_AA, SUBPIXEL_BITS)


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
    t = np.linspace(0, 2 * portable_math.PI, n, endpoint=False)
    sin_a, cos_a = portable_math.sin_cos_scalar(portable_math.radians(float(angle_deg)))
    x, y = axes[0] * portable_math.cos(t), axes[1] * portable_math.sin(t)
    return np.stack([centre[0] + x * cos_a - y * sin_a, centre[1] + x * sin_a + y * cos_a], 1)


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
        rise = portable_math.sin(portable_math.PI * t * 0.8)
        y = y0 - (0.035 + 0.002 * k) * rise + (0.06 + 0.008 * k) * (t * t * np.sqrt(t))  # t**2.5
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
    stack = [(hilum[0], hilum[1], portable_math.radians(float(a) + rng.uniform(-10, 10)), rng.uniform(0.05, 0.075),
              0.008, 1.0, 0) for a in trunk_angles]
    while stack:
        x, y, angle, length, width, weight, depth = stack.pop()
        # a slightly tortuous segment: two halves with a small bend
        bend = angle + rng.uniform(-0.3, 0.3)
        sin_angle, cos_angle = portable_math.sin_cos_scalar(angle)
        sin_bend, cos_bend = portable_math.sin_cos_scalar(bend)
        xm, ym = x + 0.5 * length * cos_angle, y + 0.5 * length * sin_angle
        x1, y1 = xm + 0.5 * length * cos_bend, ym + 0.5 * length * sin_bend
        segments.append((x, y, xm, ym, width, weight))
        segments.append((xm, ym, x1, y1, width * 0.92, weight * 0.95))
        if depth < 6:
            for sign in (-1.0, 1.0):
                spread = portable_math.radians(rng.uniform(14, 32))
                stack.append((x1, y1, bend + sign * spread, length * rng.uniform(0.72, 0.86), width * 0.72,
                              weight * 0.86, depth + 1))
    return segments
