"""Procedural textures and colours of the synthetic scenes (:mod:`recon4d.synth.scene`).

Value-noise fBm, paving, grass and asphalt grounds, brick lines, per-object and prop patterns;
every function works on all rays of a frame at once and filters by each pixel's footprint so
distant texture does not alias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from recon4d.synth.bodies import Body, random_colour

_NOISE_TILE = 256  # side of the value-noise lattice (power of two, wraps around)
GROUND_KINDS = ("paving", "grass", "asphalt")


@dataclass(frozen=True, eq=False)
class Look:
    """Random appearance of the static world."""

    noise: np.ndarray  # (_NOISE_TILE, _NOISE_TILE) float32 lattice values in [0, 1]
    ground_albedo: np.ndarray  # (2, 3) two paving tones
    wall_albedo: np.ndarray  # (4, 3) one brick colour per wall
    sun: np.ndarray  # (3,) unit direction towards the sun
    ground: str = "paving"  # one of GROUND_KINDS


def random_look(rng: np.random.Generator) -> Look:
    ground = np.stack([random_colour(rng, (0.05, 0.2), (0.5, 0.65)), random_colour(rng, (0.1, 0.3), (0.45, 0.6))])
    walls = np.stack([random_colour(rng, (0.2, 0.55), (0.45, 0.7), hue=(-0.04, 0.1)) for _ in range(4)])  # brick
    azimuth, elevation = rng.uniform(0.0, 2.0 * math.pi), math.radians(rng.uniform(45.0, 65.0))
    sun = np.array([math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation),
                    math.sin(elevation)])
    noise = rng.uniform(size=(_NOISE_TILE, _NOISE_TILE)).astype(np.float32)
    return Look(noise, ground.astype(np.float32), walls.astype(np.float32), sun.astype(np.float32))


def with_ground(look: Look, rng: np.random.Generator) -> Look:
    """``look`` on a ground kind drawn from ``GROUND_KINDS``, with tones that suit it."""
    kind = str(rng.choice(GROUND_KINDS))
    if kind == "grass":
        tones = [random_colour(rng, (0.45, 0.7), (0.35, 0.55), hue=(0.2, 0.3)),
                 random_colour(rng, (0.35, 0.6), (0.4, 0.6), hue=(0.14, 0.24))]
    elif kind == "asphalt":
        tones = [random_colour(rng, (0.0, 0.08), (0.28, 0.38)), random_colour(rng, (0.0, 0.1), (0.85, 0.95))]
    else:
        return replace(look, ground=kind)
    return replace(look, ground=kind, ground_albedo=np.stack(tones).astype(np.float32))


def _value_noise(tile: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smoothly interpolated lattice noise in [0, 1] at lattice coordinates (u, v), wrapping."""
    size = tile.shape[0]
    flat = tile.ravel()
    iu, iv = np.floor(u), np.floor(v)
    fu, fv = u - iu, v - iv
    fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    i0, j0 = iu.astype(np.int32) & (size - 1), iv.astype(np.int32) & (size - 1)
    row0, row1 = i0 * size, ((i0 + 1) & (size - 1)) * size
    j1 = (j0 + 1) & (size - 1)
    a, b = flat.take(row0 + j0), flat.take(row0 + j1)
    c, d = flat.take(row1 + j0), flat.take(row1 + j1)
    top = a + fv * (b - a)
    bottom = c + fv * (d - c)
    return top + fu * (bottom - top)


def _fbm(tile, u, v, cell_m: float, footprint_m, octaves: int = 3, seed: float = 0.0) -> np.ndarray:
    """Fractal value noise in [0, 1] with cells of ``cell_m`` metres, halving per octave.

    Octaves whose cells are smaller than ~3 pixels (``footprint_m`` = metres per pixel) fade
    to their mean, so distant ground does not shimmer from frame to frame.
    """
    total, weight = 0.5, 0.5
    for octave in range(octaves):
        cell = cell_m / 2**octave
        fade = np.clip(cell / (footprint_m + 1e-6) / 1.5 - 1.0, 0.0, 1.0)
        value = _value_noise(tile, u / cell + 17.3 * octave + seed, v / cell + 5.1 * octave - seed)
        total = total + weight * fade * (value - 0.5)
        weight *= 0.5
    return np.clip(total, 0.0, 1.0)


def _line_coverage(distance_m, half_width_m: float, footprint_m) -> np.ndarray:
    """Fraction of a pixel (box filter of width ``footprint_m``) covered by a line of half width
    ``half_width_m`` at ``distance_m`` from the pixel centre."""
    half = footprint_m / 2
    overlap = np.minimum(distance_m + half, half_width_m) - np.maximum(distance_m - half, -half_width_m)
    return np.clip(overlap / footprint_m, 0.0, 1.0)


def _cell_random(tile: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random value in [0, 1] per integer cell (i, j)."""
    mask = tile.shape[0] - 1
    return tile[(i.astype(np.int64) * 7 + 3) & mask, (j.astype(np.int64) * 13 + 11) & mask]


def ground_albedo(look: Look, points, footprint) -> np.ndarray:
    """The ground's texture at world ``points`` (N, 3): paving, grass or asphalt (``look.ground``)."""
    x, y = points[:, 0], points[:, 1]
    if look.ground == "grass":  # patchy two-tone turf with fine grain
        patches = _fbm(look.noise, x, y, 1.7, footprint, octaves=2, seed=23.0)[:, None]
        tone = look.ground_albedo[0] * (1 - patches) + look.ground_albedo[1] * patches
        grain = 0.55 + 0.9 * _fbm(look.noise, x, y, 0.12, footprint, octaves=3, seed=41.0)
        return tone * grain[:, None]
    if look.ground == "asphalt":  # dark grain, painted lines every 3.5 m along x and a kerb line along y
        grain = 0.65 + 0.7 * _fbm(look.noise, x, y, 0.08, footprint, octaves=3, seed=61.0)
        stains = 0.8 + 0.4 * _fbm(look.noise, x, y, 2.5, footprint, octaves=2, seed=67.0)
        lane = _line_coverage(np.abs(x - 3.5 * np.round(x / 3.5)), 0.06, footprint)
        dashes = (np.floor(y / 1.5).astype(np.int64) & 1) == 0
        paint = np.maximum(lane * dashes, _line_coverage(np.abs(y - 5.0), 0.08, footprint))[:, None]
        dark = look.ground_albedo[0] * (grain * stains)[:, None]
        return dark * (1 - paint) + look.ground_albedo[1] * paint
    i, j = np.floor(x), np.floor(y)
    tone = look.ground_albedo[((np.floor(x / 4) + np.floor(y / 4)).astype(np.int64) & 1)]
    tint = 0.75 + 0.5 * _cell_random(look.noise, i, j)
    grain = 0.6 + 0.8 * _fbm(look.noise, x, y, 0.3, footprint)
    grout = _line_coverage(np.minimum(np.abs(x - np.round(x)), np.abs(y - np.round(y))), 0.025, footprint)
    return tone * (tint * grain * (1 - 0.6 * grout))[:, None]


def wall_albedo(look: Look, points, normals, wall, footprint) -> np.ndarray:
    """Staggered bricks (0.8 × 0.35 m) with per-brick tint, noise and mortar lines."""
    along = np.where(np.abs(normals[:, 0]) > np.abs(normals[:, 1]), points[:, 1], points[:, 0])
    z = points[:, 2]
    row = np.floor(z / 0.35)
    s = along / 0.8 + 0.5 * (row.astype(np.int64) & 1)
    tint = 0.7 + 0.6 * _cell_random(look.noise, row + 31 * wall, np.floor(s))
    grain = 0.7 + 0.6 * _fbm(look.noise, along, z, 0.2, footprint, seed=50.0)
    mortar_m = np.minimum(np.abs(s - np.round(s)) * 0.8, np.abs(z / 0.35 - np.round(z / 0.35)) * 0.35)
    mortar = _line_coverage(mortar_m, 0.02, footprint)
    return look.wall_albedo[wall] * (tint * grain * (1 - 0.55 * mortar))[:, None]


def sky_colour(look: Look, points) -> np.ndarray:
    """Blue gradient with soft clouds (unlit)."""
    direction = points / np.linalg.norm(points, axis=-1, keepdims=True)
    up = np.clip(direction[:, 2], 0.0, 1.0)[:, None] ** 0.6
    sky = (1 - up) * np.float32([0.78, 0.86, 0.95]) + up * np.float32([0.32, 0.52, 0.86])
    clouds = _fbm(look.noise, points[:, 0], points[:, 1], 12.0, 0.0, octaves=4, seed=90.0)
    cover = np.clip((clouds - 0.5) / 0.2, 0.0, 1.0)[:, None]
    return sky * (1 - 0.7 * cover) + 0.7 * cover * np.float32([0.97, 0.97, 0.97])


def object_albedo(look: Look, body: Body, local, local_normals, faces, footprint) -> np.ndarray:
    """Face colour × pattern × noise, mapped on the two local axes across the hit face's normal."""
    across = np.argmax(np.abs(local_normals), axis=-1)
    first = np.where(across == 0, local[:, 1], local[:, 0])
    second = np.where(across == 2, local[:, 1], local[:, 2])
    grain = 0.8 + 0.4 * _fbm(look.noise, first, second, 0.1, footprint, seed=7.0)
    albedo = body.face_albedo[faces] * grain[:, None]
    if body.pattern == "checker":
        checker = (np.floor(first / 0.15) + np.floor(second / 0.15)).astype(np.int64) & 1
        albedo = albedo * (0.55 + 0.45 * checker)[:, None]
    elif body.pattern == "stripes":
        stripe = (np.floor((local[:, 2] + body.extent[2]) / 0.14).astype(np.int64) & 1)[:, None]
        albedo = albedo * (1 - stripe) + stripe * np.float32([0.95, 0.95, 0.92])
    elif body.pattern == "bricks":  # 0.4 × 0.18 m staggered bricks with mortar
        row = np.floor(second / 0.18)
        s = first / 0.4 + 0.5 * (row.astype(np.int64) & 1)
        tint = 0.75 + 0.5 * _cell_random(look.noise, row + 77, np.floor(s))
        mortar_m = np.minimum(np.abs(s - np.round(s)) * 0.4, np.abs(second / 0.18 - np.round(second / 0.18)) * 0.18)
        albedo = albedo * (tint * (1 - 0.6 * _line_coverage(mortar_m, 0.012, footprint)))[:, None]
    elif body.pattern == "planks":  # 0.14 m boards with dark gaps and per-board tint
        board = np.floor(second / 0.14)
        tint = 0.7 + 0.6 * _cell_random(look.noise, board + 13, np.floor(first / 1.3))
        gap = _line_coverage(np.abs(second / 0.14 - np.round(second / 0.14)) * 0.14, 0.01, footprint)
        albedo = albedo * (tint * (1 - 0.7 * gap))[:, None]
    elif body.pattern == "concrete":  # blotches and formwork seams every 0.6 m
        blotch = 0.75 + 0.5 * _fbm(look.noise, first, second, 0.5, footprint, octaves=2, seed=31.0)
        seam = _line_coverage(np.abs(second / 0.6 - np.round(second / 0.6)) * 0.6, 0.01, footprint)
        albedo = albedo * (blotch * (1 - 0.5 * seam))[:, None]
    return albedo


