"""Turn a user's picture into a model input the way the model's dataset was made.

``digit`` (MNIST): digits are light on dark; their bounding box was scaled to fit
20x20 and the result placed in a 28x28 field so that its centre of mass sits at the
centre. ``fit`` (every other dataset): the picture is converted to the model's
channels (grayscale or RGB, transparency onto white) and resized to its height and width.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIDE, BOX = 28, 20
INK_THRESHOLD = 0.1
UNIFORM = 1e-3  # an input whose pixels span less than this holds nothing to classify


class ImageTooLargeError(ValueError):
    """A picture with more pixels than allowed, refused before it is decoded."""


def opened(path: Path, mode: str, max_pixels: int | None = None) -> Image.Image:
    """A picture in ``mode`` (``L`` or ``RGB``); transparency is composited onto white.

    A picture of more than ``max_pixels`` pixels is refused from its header, before decoding.
    """
    with Image.open(path) as image:
        if max_pixels is not None and image.width * image.height > max_pixels:
            raise ImageTooLargeError(
                f"{image.width}x{image.height} is {image.width * image.height:,} pixels, more than the limit of "
                f"{max_pixels:,}; shrink it, or raise --max-pixels"
            )
        image.load()
        if image.mode in ("RGBA", "LA", "P", "PA"):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, rgba)
        return image.convert(mode)


def to_gray(path: Path, max_pixels: int | None = None) -> np.ndarray:
    """A picture as float32 grayscale in [0, 1]."""
    return np.asarray(opened(path, "L", max_pixels), dtype=np.float32) / 255.0


def fitted(path: Path, image_shape: tuple[int, ...], max_pixels: int | None = None) -> np.ndarray:
    """A picture converted to the shape's channels and resized to its height and width, float32 in [0, 1]."""
    height, width, channels = image_shape
    image = opened(path, "RGB" if channels == 3 else "L", max_pixels)
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    return (np.asarray(image, dtype=np.float32) / 255.0).reshape(image_shape)


def normalize(gray: np.ndarray) -> np.ndarray:
    """MNIST-style 28x28 float32 in [0, 1]: light ink on dark, box scaled into 20x20, centred by mass."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 0.5:  # dark ink on a light background
        gray, background = 1.0 - gray, 1.0 - background
    gray = np.clip(gray - background, 0.0, 1.0)
    if gray.max() > 0:
        gray = gray / gray.max()
    rows, cols = np.nonzero(gray > INK_THRESHOLD)
    if len(rows) == 0:
        return np.zeros((SIDE, SIDE), dtype=np.float32)
    crop = gray[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = BOX / max(crop.shape)
    height, width = (max(1, round(d * scale)) for d in crop.shape)
    resized = Image.fromarray((crop * 255).astype(np.uint8)).resize((width, height), Image.Resampling.LANCZOS)
    digit = np.asarray(resized, dtype=np.float32) / 255.0
    total = digit.sum()
    if total == 0:
        return np.zeros((SIDE, SIDE), dtype=np.float32)
    row_mass, col_mass = np.indices(digit.shape)
    centre_row, centre_col = (row_mass * digit).sum() / total, (col_mass * digit).sum() / total
    top = round(SIDE / 2 - centre_row - 0.5)
    left = round(SIDE / 2 - centre_col - 0.5)
    top, left = min(max(top, 0), SIDE - height), min(max(left, 0), SIDE - width)
    field = np.zeros((SIDE, SIDE), dtype=np.float32)
    field[top : top + height, left : left + width] = digit
    return np.clip(field, 0.0, 1.0)


def is_uniform(array: np.ndarray) -> bool:
    """Whether a prepared input is one flat value (a blank, uniform or 1x1 picture): nothing to classify."""
    return float(np.ptp(array)) < UNIFORM


def load_input(
    path: Path, image_shape: tuple[int, ...], prepare: str = "fit", max_pixels: int | None = None
) -> np.ndarray:
    """One model input from a picture (prepared as ``digit`` or ``fit``) or a ``.npy`` array of the image shape.

    Arrays may hold pixels in [0, 1] or [0, 255]; a wrong shape, or a NaN or infinite value,
    raises ValueError saying so.
    """
    if path.suffix.lower() == ".npy":
        array = np.load(path, allow_pickle=False).astype(np.float32)
        if not np.isfinite(array).all():
            raise ValueError(f"array holds {np.count_nonzero(~np.isfinite(array))} NaN or infinite values")
        accepted = [tuple(image_shape)] + ([tuple(image_shape[:2])] if image_shape[-1] == 1 else [])
        if array.shape not in accepted:
            raise ValueError(f"array has shape {array.shape}; expected {' or '.join(map(str, accepted))}")
        if array.max() > 1.0:
            array = array / 255.0
        return array.reshape(image_shape)
    if prepare == "digit":
        return normalize(to_gray(path, max_pixels)).reshape(image_shape)
    return fitted(path, tuple(image_shape), max_pixels)
