"""Objects of the synthetic scenes (:mod:`recon4d.synth.scene`): their meshes and categories.

Agents ("person", "dog") face where they walk; non-agents ("box", "ball", "cone", "car")
slide, roll or drive (:mod:`recon4d.synth.paths`, :mod:`recon4d.synth.motion`). Props
(:func:`make_prop`: walls, pillars, crates, parked cars) are static scenery that hides
what passes behind it; they are background, not objects.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

AGENT_CATEGORIES = ("person", "dog")
NON_AGENT_CATEGORIES = ("box", "ball", "cone")
"""Non-agents of the plain scenes; footage-like scenes add "car" (``VARIED_NON_AGENT_CATEGORIES``)."""
VARIED_NON_AGENT_CATEGORIES = ("box", "ball", "cone", "car")
PROP_KINDS = ("wall", "pillar", "crates", "parked_car")


def heading_rotation(heading_rad: np.ndarray) -> np.ndarray:
    """R_world←agent (..., 3, 3) of an upright agent facing world direction (cos h, sin h, 0)."""
    cos, sin = np.cos(heading_rad), np.sin(heading_rad)
    zero, one = np.zeros_like(cos), np.ones_like(cos)
    return np.stack([np.stack([cos, -sin, zero], -1), np.stack([sin, cos, zero], -1),
                     np.stack([zero, zero, one], -1)], axis=-2)


@dataclass(frozen=True, eq=False)
class Body:
    """An object's mesh in its own frame (x forward, y left, z up, origin at its box centre)."""

    category: str
    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray  # (F, 3) uint32
    face_albedo: np.ndarray  # (F, 3) float32 base colour of each face
    extent: np.ndarray  # (3,) size along x, y, z
    pattern: str  # "checker", "stripes", "plain", "bricks", "planks" or "concrete"

    @property
    def is_agent(self) -> bool:
        return self.category in AGENT_CATEGORIES


def random_colour(rng: np.random.Generator, saturation=(0.55, 0.9), value=(0.55, 0.9), hue=(0.0, 1.0)):
    """(3,) random RGB colour in [0, 1] from HSV ranges (hue wraps around 1)."""
    hue, saturation, value = rng.uniform(*hue) % 1.0, rng.uniform(*saturation), rng.uniform(*value)
    return np.array(colorsys.hsv_to_rgb(hue, saturation, value))


def _body(category: str, parts: list, pattern: str) -> Body:
    """Join (mesh, rgb) parts into one body re-centred on its bounding box."""
    vertices, faces, albedo, offset = [], [], [], 0
    for mesh, rgb in parts:
        vertices.append(np.asarray(mesh.vertices, np.float64))
        faces.append(np.asarray(mesh.faces, np.int64) + offset)
        albedo.append(np.tile(np.asarray(rgb, np.float32), (len(mesh.faces), 1)))
        offset += len(mesh.vertices)
    vertices = np.concatenate(vertices)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    return Body(category, vertices - (low + high) / 2.0, np.concatenate(faces).astype(np.uint32),
                 np.concatenate(albedo), high - low, pattern)


def make_body(trimesh, category: str, rng: np.random.Generator) -> Body:
    """A procedural mesh of ``category`` with random size and colours; agents face +x."""
    def box(size, at):
        return trimesh.creation.box(extents=size, transform=trimesh.transformations.translation_matrix(at))

    if category == "person":
        h = rng.uniform(1.55, 1.85)
        shirt, trousers = random_colour(rng), random_colour(rng, value=(0.2, 0.45))
        accent = random_colour(rng, saturation=(0.8, 1.0), value=(0.9, 1.0))
        head_r = 0.065 * h
        head = trimesh.creation.icosphere(subdivisions=2, radius=head_r)
        head.apply_translation([0.0, 0.0, h - head_r])
        # The visor and chest badge mark the front, the backpack the back.
        parts = [(box((0.22, 0.36, 0.47 * h), (0, 0, 0.235 * h)), trousers),
                 (box((0.26, 0.46, 0.34 * h), (0, 0, 0.64 * h)), shirt),
                 (box((0.11, 0.10, 0.32 * h), (0, 0.28, 0.63 * h)), shirt),
                 (box((0.11, 0.10, 0.32 * h), (0, -0.28, 0.63 * h)), shirt),
                 (head, (0.85, 0.66, 0.52)),
                 (box((0.10, 0.18, 0.045), (head_r + 0.03, 0, h - 1.1 * head_r)), accent),
                 (box((0.03, 0.24, 0.12), (0.145, 0, 0.70 * h)), accent),
                 (box((0.12, 0.32, 0.26 * h), (-0.19, 0, 0.64 * h)), 0.4 * shirt)]
        return _body(category, parts, "plain")
    if category == "dog":
        length = rng.uniform(0.75, 1.05)
        fur = random_colour(rng, (0.3, 0.7), (0.35, 0.8))
        dark = 0.35 * fur
        x_head = length / 2 + 0.06
        parts = [(box((length, 0.28, 0.26), (0, 0, 0.46)), fur),
                 (box((0.22, 0.20, 0.20), (x_head, 0, 0.68)), fur),
                 (box((0.14, 0.12, 0.10), (x_head + 0.18, 0, 0.64)), dark),
                 (box((0.05, 0.05, 0.09), (x_head - 0.04, 0.07, 0.82)), dark),
                 (box((0.05, 0.05, 0.09), (x_head - 0.04, -0.07, 0.82)), dark),
                 (box((0.26, 0.05, 0.05), (-length / 2 - 0.12, 0, 0.56)), dark)]
        parts += [(box((0.08, 0.08, 0.34), (sx * 0.36 * length, sy * 0.09, 0.17)), fur)
                  for sx in (-1, 1) for sy in (-1, 1)]
        return _body(category, parts, "plain")
    if category == "box":
        size = (rng.uniform(0.45, 0.9), rng.uniform(0.45, 0.9), rng.uniform(0.4, 0.85))
        return _body(category, [(box(size, (0, 0, size[2] / 2)), random_colour(rng))], "checker")
    if category == "ball":
        ball = trimesh.creation.icosphere(subdivisions=3, radius=rng.uniform(0.25, 0.42))
        return _body(category, [(ball, random_colour(rng))], "checker")
    if category == "cone":
        radius, height = rng.uniform(0.22, 0.32), rng.uniform(0.55, 0.85)
        cone = trimesh.creation.cone(radius=radius, height=height, sections=32)
        return _body(category, [(cone, random_colour(rng, value=(0.8, 1.0)))], "stripes")
    if category == "car":
        return _car(box, trimesh, category, rng)
    raise ValueError(f"unknown synthetic category {category!r}")


def _car(box, trimesh, category: str, rng: np.random.Generator) -> Body:
    """A car 3.6–4.6 m long facing +x: body, cabin, dark windows, four wheels, head and tail lights."""
    length, width = rng.uniform(3.6, 4.6), rng.uniform(1.65, 1.9)
    paint, dark = random_colour(rng, value=(0.45, 0.9)), np.array([0.08, 0.09, 0.11])
    clearance, body_h, cabin_h = 0.28, rng.uniform(0.55, 0.7), rng.uniform(0.45, 0.6)
    cabin_l = rng.uniform(0.45, 0.55) * length
    cabin_x = -rng.uniform(0.0, 0.1) * length
    top = clearance + body_h
    parts = [(box((length, width, body_h), (0, 0, clearance + body_h / 2)), paint),
             (box((cabin_l, width * 0.86, cabin_h), (cabin_x, 0, top + cabin_h / 2)), paint),
             (box((0.04, width * 0.78, cabin_h * 0.7), (cabin_x + cabin_l / 2 + 0.01, 0, top + cabin_h * 0.5)), dark),
             (box((cabin_l * 0.8, width * 0.88, cabin_h * 0.6), (cabin_x, 0, top + cabin_h * 0.5)), dark),
             (box((0.04, 0.32, 0.12), (length / 2 + 0.01, 0.62 * width / 2, clearance + 0.7 * body_h)),
              np.array([1.0, 0.97, 0.85])),
             (box((0.04, 0.32, 0.12), (length / 2 + 0.01, -0.62 * width / 2, clearance + 0.7 * body_h)),
              np.array([1.0, 0.97, 0.85])),
             (box((0.04, 0.28, 0.10), (-length / 2 - 0.01, 0.62 * width / 2, clearance + 0.7 * body_h)),
              np.array([0.85, 0.08, 0.06])),
             (box((0.04, 0.28, 0.10), (-length / 2 - 0.01, -0.62 * width / 2, clearance + 0.7 * body_h)),
              np.array([0.85, 0.08, 0.06]))]
    radius = 0.32
    for sx in (-1, 1):
        for sy in (-1, 1):
            wheel = trimesh.creation.cylinder(radius=radius, height=0.22, sections=20)
            wheel.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))
            wheel.apply_translation([sx * 0.33 * length, sy * (width / 2 - 0.08), radius])
            parts.append((wheel, dark))
    return _body(category, parts, "plain")


def make_prop(trimesh, kind: str, rng: np.random.Generator) -> Body:
    """Static scenery of ``kind`` (``PROP_KINDS``), centred on its box, long side along x."""
    def box(size, at):
        return trimesh.creation.box(extents=size, transform=trimesh.transformations.translation_matrix(at))

    if kind == "wall":
        size = (rng.uniform(2.5, 4.5), rng.uniform(0.2, 0.3), rng.uniform(1.3, 2.3))
        colour = random_colour(rng, (0.2, 0.55), (0.45, 0.75), hue=(-0.04, 0.12))
        return _body(kind, [(box(size, (0, 0, size[2] / 2)), colour)], "bricks")
    if kind == "pillar":
        side, height = rng.uniform(0.45, 0.75), rng.uniform(2.4, 3.4)
        return _body(kind, [(box((side, side, height), (0, 0, height / 2)), random_colour(rng, (0.0, 0.1), (0.6, 0.8)))],
                     "concrete")
    if kind == "crates":
        parts, colour = [], random_colour(rng, (0.35, 0.6), (0.45, 0.7), hue=(0.05, 0.12))
        side = rng.uniform(0.7, 1.0)
        for i, (x, z) in enumerate([(-0.5, 0), (0.5, 0), (0.0, 1)][: int(rng.integers(2, 4))]):
            parts.append((box((side, side, side), (x * side * 1.02, 0, side * (z + 0.5))), colour * (0.85 + 0.1 * i)))
        return _body(kind, parts, "planks")
    if kind == "parked_car":
        car = make_body(trimesh, "car", rng)
        return Body(kind, car.vertices, car.faces, car.face_albedo, car.extent, car.pattern)
    raise ValueError(f"unknown prop kind {kind!r}")


def pick_categories(n_objects: int, rng: np.random.Generator) -> list[str]:
    """Categories of a plain scene: at least one agent whenever there is an object; agents first."""
    if n_objects == 0:
        return []
    n_agents = int(rng.integers(1, (n_objects + 1) // 2 + 1))
    agents = rng.choice(AGENT_CATEGORIES, size=n_agents, p=[0.65, 0.35]).tolist()
    others = rng.choice(NON_AGENT_CATEGORIES, size=n_objects - n_agents).tolist()
    return agents + others


def pick_varied_categories(n_objects: int, rng: np.random.Generator) -> tuple[list[str], int]:
    """Categories of a footage-like scene, agents first (at least one), cars among the others,
    and the size of the group of people walking together (0: none; members come first)."""
    if n_objects == 0:
        return [], 0
    n_agents = min(n_objects, int(rng.integers(1, n_objects // 2 + 2)))
    agents = rng.choice(AGENT_CATEGORIES, size=n_agents, p=[0.6, 0.4]).tolist()
    group = 0
    if n_objects >= 3 and rng.uniform() < 0.5:
        group = int(rng.integers(2, 4)) if n_objects >= 4 else 2
        agents = ["person"] * group + agents[group:]
    others = rng.choice(VARIED_NON_AGENT_CATEGORIES, size=n_objects - len(agents), p=[0.3, 0.25, 0.2, 0.25])
    return agents + others.tolist(), group
