"""The shapes world: procedural scenes with exact ground truth, rendered in vectorised numpy.

A scene holds 1-3 coloured shapes standing on a ground plane seen from the front: lower in the
picture means nearer, so nearer objects are drawn last and occlude the farther ones, and the
depth map agrees with what is visible. Background "floor" puts a chequered floor under a camera
whose pitch changes from scene to scene, so that depth is no longer a function of the row alone:
the horizon moves, and the checks shrink with distance. Every scene is a pure function of
(seed, index): any slice of the world can be rendered on its own, in any order, on any machine.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..lab.checks import check_choice, check_int, check_non_empty, check_pair, check_seed, show

SHAPES = ("circle", "square", "triangle", "cross", "star")
COLOURS = {
    "red": (0.90, 0.12, 0.12),
    "green": (0.10, 0.70, 0.20),
    "blue": (0.15, 0.35, 0.95),
    "yellow": (0.95, 0.85, 0.10),
    "purple": (0.60, 0.20, 0.80),
    "cyan": (0.10, 0.80, 0.85),
}
SIZES = {"small": 0.15, "large": 0.23}  # radius as a fraction of the image side
BACKGROUNDS = ("plain", "noise", "texture", "floor")
TARGETS = ("shape", "colour", "combo", "size", "count")
MAX_OBJECTS = 3
GREY, SPREAD = 0.5, 0.25  # standardised pixels: (x - GREY) / SPREAD puts the plain background at 0


def standardise(images: torch.Tensor) -> torch.Tensor:
    """The shapes world's pixels as the ViTs and recipes take them: the grey background at 0,
    the colours spread over about [-2, 2]."""
    return (images - GREY) / SPREAD
_CELLS = 3  # objects sit in distinct cells of a jittered 3x3 grid, so they rarely hide each other
_RENDER_CHUNK = 512


@dataclass
class Scenes:
    """A batch of rendered scenes. Object arrays have shape (n, 3); empty slots hold -1 / nan.

    images: (n, H, W, 3) float32 in [0, 1];  instance: (n, H, W) int8, 0 = background,
    k + 1 = object slot k;  classes: (n, H, W) int8, 0 = background, s + 1 = shape s;
    depth: (n, H, W) float32, larger is farther.
    """

    index: np.ndarray
    images: np.ndarray
    instance: np.ndarray
    classes: np.ndarray
    depth: np.ndarray
    n_objects: np.ndarray
    shape: np.ndarray
    colour: np.ndarray
    size: np.ndarray
    x: np.ndarray
    y: np.ndarray
    radius: np.ndarray
    object_depth: np.ndarray
    visible: np.ndarray

    def __len__(self):
        return len(self.index)

    def objects(self, i: int) -> list[dict]:
        """Scene i's objects as readable records, in slot order."""
        colours = list(COLOURS)
        return [dict(shape=SHAPES[self.shape[i, k]], colour=colours[self.colour[i, k]],
                     size=list(SIZES)[self.size[i, k]], x=float(self.x[i, k]), y=float(self.y[i, k]),
                     depth=float(self.object_depth[i, k]), visible=float(self.visible[i, k]))
                for k in range(self.n_objects[i])]

    def torch_images(self) -> torch.Tensor:
        """Images as a (n, 3, H, W) float tensor, the layout models take."""
        return torch.from_numpy(self.images).permute(0, 3, 1, 2).contiguous()

    def targets(self, target: str) -> np.ndarray:
        """One integer label per scene, read from the first object (or the count)."""
        check_choice(target, TARGETS, "target")
        if target == "count":
            return self.n_objects - 1
        if target == "combo":
            return self.colour[:, 0] * len(SHAPES) + self.shape[:, 0]
        return {"shape": self.shape, "colour": self.colour, "size": self.size}[target][:, 0].copy()


class ShapesWorld(torch.utils.data.Dataset):
    """A deterministic, infinite world of scenes; as a Dataset it serves the first `length`.

    held_out: (colour, shape) pairs that never appear in split "train"; split "held_out" puts one
    such pair in every scene (as object 0), so compositional generalisation can be measured.
    """

    def __init__(self, image_size: int = 32, objects: tuple[int, int] = (1, 3), background: str = "noise",
                 seed: int = 0, length: int = 10_000, target: str = "shape",
                 held_out: tuple[tuple[str, str], ...] = (), split: str = "train"):
        image_size = check_int(image_size, "image_size", 16)
        lo, hi = _check_objects(objects)
        check_choice(background, BACKGROUNDS, "background")
        check_choice(target, TARGETS, "target")
        check_choice(split, ("train", "held_out", "all"), "split")
        held_out = _check_held_out(held_out)
        if split == "held_out" and not held_out:
            raise ValueError("split='held_out' needs at least one held_out (colour, shape) pair")
        seed, length = check_seed(seed), check_int(length, "length", 1)
        self.image_size, self.objects, self.background = image_size, (lo, hi), background
        self.seed, self.length, self.target, self.split = seed, length, target, split
        self.held_out = held_out

    def __repr__(self):
        return (f"ShapesWorld(image_size={self.image_size}, objects={self.objects}, "
                f"background={self.background!r}, seed={self.seed}, split={self.split!r}, "
                f"held_out={self.held_out})")

    def __len__(self):
        return self.length

    def __getitem__(self, i: int):
        check_int(i, "index")
        if not 0 <= i < self.length:
            raise IndexError(f"scene {i} is outside this world's {self.length} scenes")
        scenes = self.render([i])
        return scenes.torch_images()[0], int(scenes.targets(self.target)[0])

    def render(self, indices) -> Scenes:
        """Render the scenes with these indices (any order, repeats allowed)."""
        index = np.asarray(check_non_empty(indices, "indices")).reshape(-1)
        if index.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers, got {index.dtype} values")
        index = index.astype(np.int64)
        if index.min() < 0:
            raise ValueError("scene indices must be non-negative")
        chunks = [self._render_chunk(index[s:s + _RENDER_CHUNK]) for s in range(0, len(index), _RENDER_CHUNK)]
        return Scenes(**{f: np.concatenate([getattr(c, f) for c in chunks]) for f in Scenes.__dataclass_fields__})

    def scenes(self, n: int | None = None, start: int = 0) -> Scenes:
        """Scenes start .. start + n (default: the whole dataset), cached for the session."""
        start = check_int(start, "start", 0, self.length - 1)
        n = self.length - start if n is None else check_int(n, "n", 1)
        if start + n > self.length:
            raise ValueError(f"n={n} scenes from start={start} run past this world's length={self.length}; "
                             f"build the world with a larger length")
        return _cached_render(self._key(), start, n)

    def tensors(self, n: int | None = None, start: int = 0, target: str | None = None):
        """(images (n, 3, H, W), labels (n,)) as tensors, for in-memory training."""
        scenes = self.scenes(n, start)
        return scenes.torch_images(), torch.from_numpy(scenes.targets(target or self.target)).long()

    def _key(self):
        return (self.image_size, self.objects, self.background, self.seed, self.held_out, self.split)

    def _render_chunk(self, index: np.ndarray) -> Scenes:
        layout = _sample_layout(self, index)
        images, depth = _background(self, index)
        instance = np.zeros(images.shape[:3], np.int8)
        classes = np.zeros_like(instance)
        full_area = np.zeros(layout["shape"].shape)
        # paint far to near: the painter's algorithm gives occlusion for free
        for slot in np.argsort(-np.nan_to_num(layout["object_depth"], nan=-1.0), axis=1).T:
            rows = np.flatnonzero(slot < layout["n_objects"])
            if len(rows) == 0:
                continue
            k = slot[rows]
            inside = _shape_masks(layout, rows, k, self.image_size)
            full_area[rows, k] = inside.sum(axis=(1, 2))
            colour = np.array(list(COLOURS.values()), np.float32)[layout["colour"][rows, k]]
            images[rows] = np.where(inside[..., None], colour[:, None, None, :], images[rows])
            depth[rows] = np.where(inside, layout["object_depth"][rows, k][:, None, None], depth[rows])
            instance[rows] = np.where(inside, (k + 1)[:, None, None], instance[rows])
            classes[rows] = np.where(inside, (layout["shape"][rows, k] + 1)[:, None, None], classes[rows])
        visible_area = np.stack([(instance == k + 1).sum(axis=(1, 2)) for k in range(MAX_OBJECTS)], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            visible = np.where(full_area > 0, visible_area / full_area, np.nan)
        return Scenes(index=index, images=images, instance=instance, classes=classes, depth=depth,
                      visible=visible.astype(np.float32), **layout)


def _check_objects(objects) -> tuple[int, int]:
    lo, hi = check_pair(objects, "objects", f"(lo, hi) with 1 <= lo <= hi <= {MAX_OBJECTS}")
    lo, hi = check_int(lo, "objects", 1, MAX_OBJECTS), check_int(hi, "objects", 1, MAX_OBJECTS)
    if lo > hi:
        raise ValueError(f"objects must be a range (lo, hi) with lo <= hi, got {objects}")
    return lo, hi


def _check_held_out(held_out) -> tuple[tuple[str, str], ...]:
    """A sequence of (colour, shape) pairs; one bare pair is refused (it would be read as two)."""
    pairs = tuple(held_out) if isinstance(held_out, (tuple, list)) else None
    if pairs is None or not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
        raise TypeError(f"held_out must be a sequence of (colour, shape) pairs such as [('red', 'circle')], "
                        f"got {show(held_out)}")
    for colour, shape in pairs:
        check_choice(colour, COLOURS, "held_out colour")
        check_choice(shape, SHAPES, "held_out shape")
    return tuple((colour, shape) for colour, shape in pairs)


@lru_cache(maxsize=16)
def _cached_render(key, start: int, n: int) -> Scenes:
    image_size, objects, background, seed, held_out, split = key
    world = ShapesWorld(image_size, objects, background, seed, max(n, 1), "shape", held_out, split)
    return world.render(np.arange(start, start + n))


# ---------------------------------------------------------------- randomness from (seed, index)

def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a fast bijective hash of uint64 values."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniforms(seed: int, index: np.ndarray, stream: int, n: int) -> np.ndarray:
    """(len(index), n) uniforms in [0, 1), a pure function of (seed, index, stream, column)."""
    with np.errstate(over="ignore"):
        base = _mix(_mix(np.uint64(seed % 2**64) + np.uint64(0x9E3779B97F4A7C15)) ^ index.astype(np.uint64))
        column = _mix(np.arange(n, dtype=np.uint64) + np.uint64(stream) * np.uint64(0x632BE59BD9B4E019))
        bits = _mix(base[:, None] ^ column[None, :])
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


# ---------------------------------------------------------------- layout: what is where

_LAYOUT_STREAM, _BACKGROUND_STREAM, _NOISE_STREAM, _FLOOR_STREAM = 1, 2, 3, 4


def _sample_layout(world: ShapesWorld, index: np.ndarray) -> dict:
    """Objects per scene: distinct shapes and distinct colours, so "the red one" is unambiguous."""
    n, k = len(index), MAX_OBJECTS
    u = uniforms(world.seed, index, _LAYOUT_STREAM, 1 + 5 * k + _CELLS**2 + len(SHAPES) + len(COLOURS) + 1)
    lo, hi = world.objects
    n_objects = lo + np.minimum((u[:, 0] * (hi - lo + 1)).astype(int), hi - lo)
    jitter_x, jitter_y, size_u = u[:, 1:1 + k], u[:, 1 + k:1 + 2 * k], u[:, 1 + 2 * k:1 + 3 * k]
    at = 1 + 5 * k
    cells = np.argsort(u[:, at:at + _CELLS**2], axis=1)[:, :k]
    at += _CELLS**2
    shape = np.argsort(u[:, at:at + len(SHAPES)], axis=1)
    at += len(SHAPES)
    colour = np.argsort(u[:, at:at + len(COLOURS)], axis=1)
    colour, shape = _respect_held_out(world, colour, shape, u[:, -1])
    colour, shape = colour[:, :k], shape[:, :k]
    size = (size_u * len(SIZES)).astype(int)
    radius_fraction = np.array(list(SIZES.values()))[size]
    # cells: 3x3 grid; jitter keeps the centre inside its cell and the object mostly inside the image
    cell_x, cell_y = cells % _CELLS, cells // _CELLS
    x = np.clip((cell_x + 0.2 + 0.6 * jitter_x) / _CELLS, radius_fraction * 0.8, 1 - radius_fraction * 0.8)
    y = np.clip((cell_y + 0.2 + 0.6 * jitter_y) / _CELLS, radius_fraction * 0.8, 1 - radius_fraction * 0.8)
    # an object stands on the ground plane: its depth is the ground's depth at its base
    # (the x term breaks ties between objects whose bases sit at the same height)
    object_depth = _ground_under(world, index, np.minimum(y + radius_fraction, 1.0)) - 0.02 - 0.01 * x
    empty = np.arange(k)[None, :] >= n_objects[:, None]
    layout = dict(n_objects=n_objects, shape=shape, colour=colour, size=size, x=x, y=y,
                  radius=radius_fraction * world.image_size, object_depth=object_depth)
    for name, value in layout.items():
        if name != "n_objects":
            layout[name] = np.where(empty, -1 if value.dtype.kind == "i" else np.nan, value)
    layout["x"], layout["y"] = layout["x"].astype(np.float32), layout["y"].astype(np.float32)
    layout["object_depth"] = layout["object_depth"].astype(np.float32)
    layout["radius"] = layout["radius"].astype(np.float32)
    return layout


def _respect_held_out(world: ShapesWorld, colour: np.ndarray, shape: np.ndarray, u: np.ndarray):
    """Reorder each scene's colour and shape permutations so that held-out pairs are avoided
    (split "train") or put in object 0 (split "held_out"). Few rows change: a row loop is cheap."""
    if not world.held_out or world.split == "all":
        return colour, shape
    colour_id = {c: i for i, c in enumerate(COLOURS)}
    banned = sorted((colour_id[c], SHAPES.index(s)) for c, s in world.held_out)
    colour, shape = colour.copy(), shape.copy()
    for row in range(len(colour)):
        first = []
        if world.split == "held_out":
            first = [banned[int(u[row] * len(banned))]]
            shape[row] = _move_to_front(shape[row], first[0][1])
        colour[row] = _assign_colours(list(colour[row]), shape[row], set(banned), first)
    return colour, shape


def _move_to_front(perm: np.ndarray, value: int) -> np.ndarray:
    return np.array([value] + [p for p in perm if p != value])


def _assign_colours(perm: list[int], shapes: np.ndarray, banned: set, first: list) -> list[int]:
    """Greedy: each slot takes the first unused colour whose pair with its shape is allowed."""
    chosen = [c for c, _ in first]
    for slot in range(len(chosen), MAX_OBJECTS):
        pick = next((c for c in perm if c not in chosen and (c, shapes[slot]) not in banned), None)
        if pick is None:
            raise ValueError("held_out bans too many (colour, shape) pairs to build a scene")
        chosen.append(pick)
    return chosen + [c for c in perm if c not in chosen]


def ground_depth(y: np.ndarray) -> np.ndarray:
    """Depth of the ground plane at height y in [0, 1] (top of the picture = far = 1.0)."""
    return 1.0 - 0.5 * np.asarray(y)


_FOCAL, _CHECK = 1.5, 0.5  # the floor camera's focal length and the checks' side, in units of its height


def horizon(seed: int, index: np.ndarray) -> np.ndarray:
    """Background "floor": each scene's horizon row, from just inside the picture's top (0.15) to
    well above it (-0.6, a camera looking down), so that the same row lies at different depths."""
    return -0.6 + 0.75 * uniforms(seed, index, _FLOOR_STREAM, 1)[:, 0]


def _floor_distance(y: np.ndarray, horizon_row: np.ndarray) -> np.ndarray:
    """How far along the floor the point seen at row y lies (pinhole camera): f / (y - horizon)."""
    return _FOCAL / np.maximum(np.asarray(y) - horizon_row, 1e-6)


def floor_depth(y: np.ndarray, horizon_row: np.ndarray) -> np.ndarray:
    """Depth in [0, 1) of the floor seen at row y under a horizon at `horizon_row`: its distance z
    mapped to z / (z + 1); at and above the horizon (the sky), 1."""
    z = _floor_distance(y, horizon_row)
    return np.where(np.asarray(y) > horizon_row, z / (z + 1.0), 1.0)


def _ground_under(world: ShapesWorld, index: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(len(index), ...) depth of the world's ground at rows y (one row of y per scene)."""
    if world.background == "floor":
        return floor_depth(y, horizon(world.seed, index)[:, None])
    return ground_depth(y)


# ---------------------------------------------------------------- pixels

def _background(world: ShapesWorld, index: np.ndarray):
    """Grey backgrounds only: colour must live on the objects (a colour shortcut in the
    background would let self-supervised methods ignore the objects)."""
    n, s = len(index), world.image_size
    rows = (np.arange(s, dtype=np.float32) + 0.5) / s
    depth = np.broadcast_to(ground_depth(rows)[None, :, None], (n, s, s)).astype(np.float32)
    grey = np.full((n, s, s), 0.5, np.float32)
    if world.background == "noise":
        grey += (0.3 * (uniforms(world.seed, index, _NOISE_STREAM, s * s) - 0.5)).reshape(n, s, s).astype(np.float32)
    elif world.background == "texture":
        u = uniforms(world.seed, index, _BACKGROUND_STREAM, 3)
        angle, frequency, phase = np.pi * u[:, 0], 2 + 4 * u[:, 1], 2 * np.pi * u[:, 2]
        along = np.cos(angle)[:, None, None] * rows[None, None, :] + np.sin(angle)[:, None, None] * rows[None, :, None]
        grey += (0.15 * np.sin(2 * np.pi * frequency[:, None, None] * along + phase[:, None, None])).astype(np.float32)
    elif world.background == "floor":
        grey, depth = _floor(world, index, rows)
    return np.repeat(grey[..., None], 3, axis=3), depth


def _floor(world: ShapesWorld, index: np.ndarray, rows: np.ndarray):
    """A chequered floor in perspective under a plain sky; the checks fade with distance (they
    would alias into noise) and are shifted at random, so no pixel pattern marks a fixed depth."""
    h = horizon(world.seed, index)[:, None, None]
    shift = _CHECK * uniforms(world.seed, index, _FLOOR_STREAM + 1, 2)
    y, x = rows[None, :, None], rows[None, None, :]
    z = _floor_distance(y, h)
    across = (x - 0.5) * z / _FOCAL + shift[:, 0, None, None]  # sideways position on the floor
    along = z + shift[:, 1, None, None]
    checks = np.sign(np.sin(np.pi * across / _CHECK) * np.sin(np.pi * along / _CHECK))
    grey = np.where(y > h, 0.5 + 0.2 * checks * np.exp(-z / 6.0), 0.5)
    depth = np.broadcast_to(floor_depth(y, h), grey.shape)
    return grey.astype(np.float32), depth.astype(np.float32)


def _shape_masks(layout: dict, rows: np.ndarray, slots: np.ndarray, size: int) -> np.ndarray:
    """Boolean (len(rows), size, size) masks, each shape tested in coordinates scaled by its radius."""
    grid = np.arange(size, dtype=np.float32) + 0.5
    radius = layout["radius"][rows, slots][:, None, None]
    u = (grid[None, None, :] - layout["x"][rows, slots][:, None, None] * size) / radius
    v = (grid[None, :, None] - layout["y"][rows, slots][:, None, None] * size) / radius
    masks = np.zeros((len(rows), size, size), bool)
    shape = layout["shape"][rows, slots]
    for s, inside in enumerate(_INSIDE):
        pick = shape == s
        if pick.any():
            masks[pick] = inside(u[pick], v[pick])
    return masks


def _circle(u, v):
    return u * u + v * v <= 1.0


def _square(u, v):
    return np.maximum(np.abs(u), np.abs(v)) <= 0.82


def _triangle(u, v):  # apex up (image y grows downwards)
    return (v <= 0.75) & (np.abs(u) <= 0.62 * (v + 1.0))


def _cross(u, v):
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.34) & (av <= 1.0)) | ((av <= 0.34) & (au <= 1.0))


def _star(u, v):  # five points, one pointing up
    rho, theta = np.hypot(u, v), np.arctan2(v, u) + np.pi / 2
    return rho <= 0.5 + 0.5 * np.abs(np.cos(2.5 * theta)) ** 3


_INSIDE = (_circle, _square, _triangle, _cross, _star)
