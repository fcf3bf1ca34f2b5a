"""Turn decoded uint8 images into what a model trains on: the requested channels and size, then
float32 in [-1, 1], in the (N, C, H, W) layout both backends use.

Every step is numpy or Pillow on uint8 pixels, so both backends train on the very same arrays.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Pillow >= 9.1 moved the filters into Image.Resampling and (until 10) warned on the old names;
# older Pillows only have the old names.
BILINEAR = getattr(Image, "Resampling", Image).BILINEAR


def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (N, H, W, C) images with C = 1 or 3, as ``channels`` channels.

    Grayscale to RGB repeats the one channel; RGB to grayscale is ITU-R 601 luma in the integer
    arithmetic of Pillow's convert('L'), so a folder of colour files and a colour array converted
    here give the same pixels.
    """
    have = images.shape[-1]
    if have == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    rgb = images.astype(np.uint32)
    luma = (19595 * rgb[..., 0] + 38470 * rgb[..., 1] + 7471 * rgb[..., 2] + 0x8000) >> 16
    return luma.astype(np.uint8)[..., np.newaxis]


def pil_image(pixels: np.ndarray) -> Image.Image:
    """One uint8 (H, W, C) image as Pillow's 'L' (C = 1) or 'RGB' (C = 3) image."""
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, C) images resized to size x size with Pillow's bilinear filter."""
    if images.shape[1:3] == (size, size):
        return images
    # One image at a time: a bilinear filter over a mosaic would blend neighbouring images at the
    # edges, and Pillow on small images is fast enough (about two seconds for 70,000 digits).
    resized = np.empty((len(images), size, size, images.shape[-1]), dtype=np.uint8)
    for index, pixels in enumerate(images):
        image = pil_image(pixels).resize((size, size), BILINEAR)
        resized[index] = np.asarray(image).reshape(size, size, -1)
    return resized


def scale_to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) as float32 (N, C, H, W) in [-1, 1].

    float32 throughout, in torchvision's order of operations (ToTensor, then Normalize(0.5, 0.5)),
    so 0 and 255 land exactly on -1 and 1 and every value matches that pipeline bit for bit.
    """
    scaled = images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    return (scaled - np.float32(0.5)) / np.float32(0.5)
