"""Elementary functions built from IEEE-754 basic operations only, so their bits are the same on every CPU.

numpy's float64 ``exp``, ``log``, ``power``, ``sin``, ``cos`` and ``arctan2`` (and Python's ``math`` module) call the C
library or numpy's own SIMD kernels, and both are chosen at run time by instruction set: glibc has FMA variants of
``exp``/``log``/``pow``/``sin``/``atan2``, numpy has AVX-512 ones. They agree to the last bit or two, and that is
enough for a value near a rounding boundary to land on another grey level on another CPU (issue 27). The functions
here use only ``+ - * /``, ``sqrt``, comparisons, ``rint``, ``frexp`` and ``ldexp``, each correctly rounded by
IEEE-754 and evaluated as separate numpy operations in a fixed order (numpy never fuses them into an FMA), so a
given input gives the same bits with or without AVX-512, AVX2 or FMA.

Accuracy is a few units in the last place over the ranges the phantom uses (not correctly rounded; it does not need
to be). The functions take a float or an array and return float64 (a numpy scalar for a scalar input);
:func:`sin_cos_scalar` is the Python-float twin of :func:`sin` and :func:`cos` for loops over single angles.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

PI = math.pi  # a literal: constants below are exact scalings of it or decimal literals
# ln 2 and pi/2 split Cody-Waite style: the high parts have trailing zero bits, so k * HI is exact for |k| < 2**20
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e00
PIO2_1 = 1.57079632673412561417e00
PIO2_2 = 6.07710050630396597660e-11
PIO2_3 = 2.02226624879595063154e-21
TWO_OVER_PI = 6.36619772367581382433e-01
SQRT_HALF = 0.7071067811865476
TAN_PI_8 = 0.41421356237309503
EXP_LIMIT = 700.0  # exp saturates beyond (float64 overflows at ~709.8)

_TAYLOR = [1.0 / float(math.factorial(n)) for n in range(22)]  # 1/n!: a conversion and a division, both rounded
_EXP_COEFFS = _TAYLOR[:14]  # exp on |r| <= ln2 / 2: the first term left out is < 1e-17
_SIN_COEFFS = [c if n % 2 == 0 else -c for n, c in enumerate(_TAYLOR[1::2])]  # r - r**3/3! + ... up to r**21
_COS_COEFFS = [c if n % 2 == 0 else -c for n, c in enumerate(_TAYLOR[0::2])]  # 1 - r**2/2! + ... up to r**20
_ODD_RECIPROCALS = [1.0 / (2 * n + 1) for n in range(14)]  # atanh and atan series
_ATAN_COEFFS = [c if n % 2 == 0 else -c for n, c in enumerate(_ODD_RECIPROCALS)]


def _horner(coefficients: list[float], z: Any) -> Any:
    """sum_n coefficients[n] * z**n for an array or a Python float, from the highest term down (a fixed order)."""
    result = coefficients[-1] * z + coefficients[-2]
    for c in reversed(coefficients[:-2]):
        result = result * z + c
    return result


def exp(x: ArrayLike) -> np.ndarray:
    """e**x; arguments beyond +-700 are clamped there."""
    x = np.clip(np.asarray(x, dtype=np.float64), -EXP_LIMIT, EXP_LIMIT)
    k = np.rint(x * INV_LN2)
    r = (x - k * LN2_HI) - k * LN2_LO
    return np.ldexp(_horner(_EXP_COEFFS, r), k.astype(np.int64))


def log(x: ArrayLike) -> np.ndarray:
    """Natural logarithm of positive ``x`` (other values give meaningless numbers: mask them first)."""
    x = np.asarray(x, dtype=np.float64)
    mantissa, exponent = np.frexp(x)  # x = mantissa * 2**exponent, mantissa in [0.5, 1)
    low = mantissa < SQRT_HALF
    mantissa = np.where(low, mantissa * 2.0, mantissa)  # now in [0.707, 1.414)
    e = (exponent - low).astype(np.float64)
    s = (mantissa - 1.0) / (mantissa + 1.0)  # log(m) = 2 atanh(s), |s| < 0.172
    log_mantissa = 2.0 * s * _horner(_ODD_RECIPROCALS, s * s)
    return e * LN2_HI + (e * LN2_LO + log_mantissa)


def power(x: ArrayLike, y: float) -> np.ndarray:
    """x**y for x >= 0 and y > 0 (0**y = 0)."""
    x = np.asarray(x, dtype=np.float64)
    positive = x > 0.0
    return np.where(positive, exp(y * log(np.where(positive, x, 1.0))), 0.0)


UNIT_POWER_NODES = 4096


@functools.lru_cache(maxsize=64)
def _unit_power_table(y: float) -> tuple[np.ndarray, np.ndarray]:
    """s**(2y) at the nodes s = k / UNIT_POWER_NODES, and the step to the next node."""
    s = np.arange(UNIT_POWER_NODES + 1, dtype=np.float64) / UNIT_POWER_NODES
    values = power(s, 2.0 * y)
    return values[:-1], np.diff(values)


def unit_power(x: ArrayLike, y: float) -> np.ndarray:
    """x**y for x in [0, 1] (clipped there) and y > 0, three times faster than :func:`power`: linear interpolation
    in a 4096-step table of s**(2y) over s = sqrt(x), where the curve is smooth (absolute error measured below
    1e-6 for y >= 0.7 and 1e-4 for y = 0.4, the largest in the first step)."""
    position = np.sqrt(np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)) * UNIT_POWER_NODES
    index = np.minimum(position.astype(np.intp), UNIT_POWER_NODES - 1)  # truncation = floor, as position >= 0
    values, steps = _unit_power_table(float(y))
    return values[index] + (position - index) * steps[index]


def tanh(x: ArrayLike) -> np.ndarray:
    """Hyperbolic tangent, odd, from exp (absolute error ~1e-16)."""
    x = np.asarray(x, dtype=np.float64)
    magnitude = 1.0 - 2.0 / (exp(2.0 * np.abs(x)) + 1.0)
    return np.where(x < 0.0, -magnitude, magnitude)


def _sin_cos(x: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    k = np.rint(x * TWO_OVER_PI)  # the nearest multiple of pi/2 (|x| < ~1e6 keeps the reduction exact enough)
    r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3  # |r| <= pi/4
    z = r * r
    sine = r * _horner(_SIN_COEFFS, z)
    cosine = _horner(_COS_COEFFS, z)
    quadrant = k.astype(np.int64) & 3
    sin = np.choose(quadrant, [sine, cosine, -sine, -cosine])
    cos = np.choose(quadrant, [cosine, -sine, -cosine, sine])
    return sin, cos


def sin_cos_scalar(x: float) -> tuple[float, float]:
    """(sin x, cos x) of one Python float, the same bits as :func:`sin` and :func:`cos` give (Python floats are
    IEEE-754 doubles and each operation is rounded alike), without numpy's per-call overhead."""
    k = float(round(x * TWO_OVER_PI))  # round half to even, as np.rint
    r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3
    z = r * r
    sine, cosine = r * _horner(_SIN_COEFFS, z), _horner(_COS_COEFFS, z)
    return [(sine, cosine), (cosine, -sine), (-sine, -cosine), (-cosine, sine)][int(k) & 3]


def sin(x: ArrayLike) -> np.ndarray:
    return _sin_cos(x)[0]


def cos(x: ArrayLike) -> np.ndarray:
    return _sin_cos(x)[1]


def atan2(y: ArrayLike, x: ArrayLike) -> np.ndarray:
    """The angle of the point (x, y) in radians, in [-pi, pi] (atan2(0, 0) = 0)."""
    y, x = np.broadcast_arrays(np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64))
    ax, ay = np.abs(x), np.abs(y)
    steep = ay > ax
    numerator, denominator = np.where(steep, ax, ay), np.where(steep, ay, ax)
    t = numerator / np.where(denominator > 0.0, denominator, 1.0)  # in [0, 1]
    beyond = t > TAN_PI_8
    u = np.where(beyond, (t - 1.0) / (t + 1.0), t)  # atan(t) = pi/4 + atan(u), |u| <= tan(pi/8)
    v = u / (1.0 + np.sqrt(1.0 + u * u))  # atan(u) = 2 atan(v), |v| <= 0.199
    angle = 2.0 * v * _horner(_ATAN_COEFFS, v * v) + np.where(beyond, 0.25 * PI, 0.0)
    angle = np.where(steep, 0.5 * PI - angle, angle)
    angle = np.where(x < 0.0, PI - angle, angle)
    return np.where(y < 0.0, -angle, angle)


def degrees(angle: Any) -> Any:
    """Radians to degrees, for a float or an array (one correctly rounded product)."""
    return angle * (180.0 / PI)


def radians(angle: Any) -> Any:
    """Degrees to radians, for a float or an array."""
    return angle * (PI / 180.0)
