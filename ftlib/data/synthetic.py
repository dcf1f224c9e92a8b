"""Procedural colour images of shapes, with knobs for dataset size and domain similarity.

Transfer-learning advice depends on two things: how much target data there is and how similar it is
to the source domain (CS231n's four quadrants). Real datasets fix both; this generator lets you set
them. The *source* task and the *target* task draw different shapes (transfer to new classes), and
`similarity` moves the rendering style of the images away from the source domain:

- similarity = 1: the source style, bright warm shapes (reds to yellows) with soft edges on a dark,
  smoothly shaded blue-violet background, almost no noise;
- similarity = 0: other low-level statistics, hues turned a quarter of the way round the colour
  wheel (green shapes on magenta-red backgrounds), lighter backgrounds, crisp edges,
  high-frequency stripes on the shapes and strong pixel noise.

In between, every one of these changes grows linearly with 1 - similarity. The contrast never
flips (shapes stay brighter than backgrounds): an inversion, or a larger hue turn, makes the
contrast a source-trained network relies on pass through zero half-way, and then transfer gets
worse *and then better again* as similarity falls, which would make the knob hard to read. With
these settings a linear probe on the frozen "shapes" checkpoint falls steadily with similarity
(about 0.96, 0.91, 0.68, 0.32, 0.25 for similarity 1, 0.75, 0.5, 0.25, 0 with 10 target images per
class, chance 0.2); at similarity 0 it is below the probe on a randomly initialised network (0.37),
negative transfer, although a network trained from scratch on 1000 images per class reaches 0.98
there. The random geometry (which shape, where, how big, how turned) does not depend
on `similarity`: the same seed draws the same shapes in every style, a controlled comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ftlib._choice import Choice

Array = np.ndarray


# Each shape is a function of pixel coordinates x, y (N, H, W), centred on the shape and already
# rotated, and its radius r (N, 1, 1). It returns how far each pixel lies inside the shape
# (negative outside), roughly in the same units as x and y, so that edges can be anti-aliased.
def _disk(x: Array, y: Array, r: Array) -> Array:
    return r - np.hypot(x, y)


def _square(x: Array, y: Array, r: Array) -> Array:
    return 0.85 * r - np.maximum(abs(x), abs(y))


def _triangle(x: Array, y: Array, r: Array) -> Array:
    # Intersection of three half-planes whose outward normals point down, up-right and up-left.
    angles = np.deg2rad([90.0, 210.0, 330.0])
    reach = x[..., None] * np.cos(angles) + y[..., None] * np.sin(angles)
    return 0.55 * r - reach.max(axis=-1)


def _plus(x: Array, y: Array, r: Array) -> Array:
    half_width = 0.3 * r
    horizontal = np.minimum(r - abs(x), half_width - abs(y))
    vertical = np.minimum(half_width - abs(x), r - abs(y))
    return np.maximum(horizontal, vertical)


def _ring(x: Array, y: Array, r: Array) -> Array:
    half_width = 0.14 * r
    return half_width - abs(np.hypot(x, y) - (r - half_width))


def _diamond(x: Array, y: Array, r: Array) -> Array:
    return (1.1 * r - (abs(x) + abs(y))) / np.sqrt(2.0)


def _cross(x: Array, y: Array, r: Array) -> Array:
    c = np.sqrt(0.5)
    return _plus(c * (x - y), c * (x + y), r)


def _frame(x: Array, y: Array, r: Array) -> Array:
    half_width = 0.14 * r
    return half_width - abs(np.maximum(abs(x), abs(y)) - (0.85 * r - half_width))


def _half_disk(x: Array, y: Array, r: Array) -> Array:
    # Flat side down, shifted so that the half-disk sits about the centre.
    radius = 1.2 * r
    below_flat = y - 0.4 * radius
    return np.minimum(radius - np.hypot(x, below_flat), -below_flat)


def _ellipse(x: Array, y: Array, r: Array) -> Array:
    minor = 0.5 * r
    return minor * (1.0 - np.hypot(x / r, y / minor))


SHAPES: dict[str, Callable[[Array, Array, Array], Array]] = {
    "disk": _disk,
    "square": _square,
    "triangle": _triangle,
    "plus": _plus,
    "ring": _ring,
    "diamond": _diamond,
    "cross": _cross,
    "frame": _frame,
    "half_disk": _half_disk,
    "ellipse": _ellipse,
}


class ShapeTask(Choice):
    """Which classes to draw: the source task's shapes or the target task's (disjoint) shapes."""

    SOURCE = "source"
    TARGET = "target"

    @property
    def classes(self) -> tuple[str, ...]:
        """Shape names of this task, in label order."""
        if self is ShapeTask.SOURCE:
            return ("disk", "square", "triangle", "plus", "ring")
        return ("diamond", "cross", "frame", "half_disk", "ellipse")


# Rendering style of the source domain (similarity 1) and how far similarity 0 moves it.
_SOURCE_FG_HUE = (0.0, 0.17)  # reds to yellows
_SOURCE_BG_HUE = (0.55, 0.75)  # blues to violets, dark
_HUE_SHIFT = 0.25  # at similarity 0: a quarter of the way round the colour wheel
_FG_VALUE, _BG_VALUE = (0.75, 1.0), (0.1, 0.3)  # HSV value (brightness) of shape and background
_BG_LIGHTEN = 0.25  # background brightness added at similarity 0
_EDGE_PIXELS = (1.5, 0.4)  # anti-aliasing ramp at similarity 1 and 0
_NOISE_STD = (0.02, 0.12)
_STRIPE_AMPLITUDE = 0.35  # at similarity 0
_STRIPE_PERIOD_PIXELS = (2.0, 3.0)
_SHADING_AMPLITUDE = 0.3  # smooth background gradient, kept in every style


def _hsv_to_rgb(hue: Array, saturation: Array, value: Array) -> Array:
    """Vectorised HSV -> RGB for arrays of shape (N,); returns (N, 3)."""
    k = (np.array([5.0, 3.0, 1.0]) + 6.0 * hue[:, None]) % 6.0
    ramp = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return value[:, None] * (1.0 - saturation[:, None] * ramp)


def render_shapes(
    classes: Sequence[str],
    n_per_class: int,
    *,
    similarity: float = 1.0,
    seed: int = 0,
    size: int = 16,
) -> TensorDataset:
    """Draw `n_per_class` images of each named shape in the style given by `similarity`.

    Why: `make_shapes` covers the source and target tasks; this is the renderer underneath, for
    your own choice of classes (e.g. a tiny ImageFolder).

    Args:
        classes: shape names from `SHAPES`, in label order.
        n_per_class: images per class; classes are interleaved, so every prefix stays balanced.
        similarity: rendering style, 1.0 = the source domain, 0.0 = clearly different statistics.
        seed: seed of every random choice; the same arguments always give the same images.
        size: height and width in pixels.

    Returns:
        A `TensorDataset` of (images float32 (N, 3, size, size) in [0, 1], labels int64).

    Raises:
        ValueError: for an unknown shape name, `n_per_class` < 1, `similarity` outside [0, 1] or
            `size` < 4.
    """
    unknown = [name for name in classes if name not in SHAPES]
    if unknown or not classes:
        raise ValueError(f"unknown shape names {unknown}; choose from {list(SHAPES)}")
    if n_per_class < 1:
        raise ValueError(f"n_per_class={n_per_class} must be at least 1")
    if not 0.0 <= similarity <= 1.0:
        raise ValueError(f"similarity={similarity} must lie in [0, 1]")
    if size < 4:
        raise ValueError(f"size={size} must be at least 4 pixels")

    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(len(classes)), n_per_class)
    n = len(labels)
    shift = 1.0 - similarity

    # Geometry first, so that it does not depend on the style.
    centre = rng.uniform(-0.15, 0.15, size=(2, n, 1, 1))
    radius = rng.uniform(0.5, 0.75, size=(n, 1, 1)).astype(np.float32)
    angle = np.deg2rad(rng.uniform(-20.0, 20.0, size=(n, 1, 1))).astype(np.float32)
    # float32 from here on: the big arrays are (N, 3, size, size) and half the bytes is faster.
    grid = ((np.arange(size) + 0.5) / size * 2.0 - 1.0).astype(np.float32)
    dx = grid[None, None, :] - centre[0].astype(np.float32)
    dy = grid[None, :, None] - centre[1].astype(np.float32)
    x = np.cos(angle) * dx + np.sin(angle) * dy
    y = -np.sin(angle) * dx + np.cos(angle) * dy
    inside = np.empty((n, size, size), dtype=np.float32)
    for label, name in enumerate(classes):
        members = labels == label
        inside[members] = SHAPES[name](x[members], y[members], radius[members])
    pixel = 2.0 / size
    edge = (_EDGE_PIXELS[0] + shift * (_EDGE_PIXELS[1] - _EDGE_PIXELS[0])) * pixel
    coverage = np.clip(0.5 + inside / edge, 0.0, 1.0)[:, None]

    # Colours: bright shapes on darker backgrounds in every style, so the contrast never flips.
    fg_hue = rng.uniform(*_SOURCE_FG_HUE, size=n) + _HUE_SHIFT * shift
    bg_hue = rng.uniform(*_SOURCE_BG_HUE, size=n) + _HUE_SHIFT * shift
    fg_value = rng.uniform(*_FG_VALUE, size=n)
    bg_value = rng.uniform(*_BG_VALUE, size=n) + _BG_LIGHTEN * shift
    fg = _hsv_to_rgb(fg_hue % 1.0, rng.uniform(0.6, 1.0, size=n), fg_value)
    bg = _hsv_to_rgb(bg_hue % 1.0, rng.uniform(0.2, 0.6, size=n), bg_value)
    fg, bg = (colour.astype(np.float32)[..., None, None] for colour in (fg, bg))

    # Smooth shading of the background in every style; stripes on the shape only away from it.
    direction = rng.uniform(0.0, 2.0 * np.pi, size=(2, n, 1, 1)).astype(np.float32)
    ramp = np.cos(direction[0]) * dx + np.sin(direction[0]) * dy
    background = bg * (1.0 + _SHADING_AMPLITUDE * ramp[:, None])
    period = rng.uniform(*_STRIPE_PERIOD_PIXELS, size=(n, 1, 1)).astype(np.float32) * pixel
    across = np.cos(direction[1]) * dx + np.sin(direction[1]) * dy
    stripes = np.sign(np.sin(2.0 * np.pi * across / period))
    foreground = fg * (1.0 + _STRIPE_AMPLITUDE * shift * stripes[:, None])

    noise_std = _NOISE_STD[0] + shift * (_NOISE_STD[1] - _NOISE_STD[0])
    noise = np.float32(noise_std) * rng.standard_normal(size=(n, 3, size, size), dtype=np.float32)
    images = np.clip(background + coverage * (foreground - background) + noise, 0.0, 1.0)
    return TensorDataset(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)))


def make_shapes(
    n_per_class: int,
    *,
    task: ShapeTask | str = ShapeTask.SOURCE,
    similarity: float = 1.0,
    seed: int = 0,
    size: int = 16,
) -> TensorDataset:
    """A 5-class shapes dataset of the source or the target task, in a chosen style.

    Why: with `n_per_class` (small < 1000 <= large) and `similarity` (1 = similar, 0 = different)
    you can build each of the four transfer-learning quadrants and measure which recipe wins.

    Args:
        n_per_class: images per class.
        task: "source" (disk, square, triangle, plus, ring) or "target" (diamond, cross, frame,
            half_disk, ellipse); see `ShapeTask.classes`.
        similarity: rendering style in [0, 1]; 1.0 is the source domain's style.
        seed: seed of every random choice. Use different seeds for train and test sets.
        size: height and width in pixels (16 suits `SmallCNN` and the "shapes" checkpoint).

    Returns:
        A `TensorDataset` of (images float32 (N, 3, size, size) in [0, 1], labels int64 0-4).

    Raises:
        ValueError: for an unknown task or an invalid knob (see `render_shapes`).
    """
    classes = ShapeTask.parse(task).classes
    return render_shapes(classes, n_per_class, similarity=similarity, seed=seed, size=size)
