"""CIFAR-10-C's common corruptions, regenerated with numpy, scipy and Pillow.

    corrupt(name, images, severity, rng) -> images     uint8 (n, 32, 32, 3) in and out

The parameters are the ones the benchmark's generator (Hendrycks & Dietterich 2019,
``make_cifar_c.py``) uses for 32x32 images; the formulas follow it step by step, with the
OpenCV, scikit-image and ImageMagick calls it makes rewritten here (motion blur's one-sided
Gaussian kernel, Canny edges, HSV). The random draws differ, and a few steps are
approximations (said beside each), so the images are regenerated, not bit-identical to the
published CIFAR-10-C. Frost is left out: it overlays photographs of frost that are not
available here (``LEFT_OUT``).

Every function takes a batch and a numpy Generator; the same seed gives the same arrays.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage

SEVERITIES = 5
# Bump when any corruption's output changes: it keys the cache of corrupted images.
CODE_VERSION = 2

# --- parameters, per severity 1..5, as make_cifar_c.py gives them ---------------------------
GAUSSIAN_NOISE = (0.04, 0.06, 0.08, 0.09, 0.10)  # std of the added noise, pixels in 0..1
SHOT_NOISE = (500, 250, 100, 75, 50)  # photons per unit intensity (Poisson rate)
IMPULSE_NOISE = (0.01, 0.02, 0.03, 0.05, 0.07)  # fraction of values set to 0 or 1
SPECKLE_NOISE = (0.06, 0.1, 0.12, 0.16, 0.2)  # std of the multiplicative noise
GAUSSIAN_BLUR = (0.4, 0.6, 0.7, 0.8, 1.0)  # sigma, pixels
GLASS_BLUR = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))  # sigma, max shift, rounds
DEFOCUS_BLUR = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))  # disk radius, antialias sigma
MOTION_BLUR = ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))  # ImageMagick radius, sigma (pixels)
ZOOM_BLUR = (1.06, 1.11, 1.16, 1.21, 1.26)  # zoom factors np.arange(1, this, 0.01)
SNOW = ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8))
# mean, std, zoom, threshold, motion radius, motion sigma, weight of the image
FOG = ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75))  # strength, plasma decay
BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)  # added to HSV value
CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)  # factor on the distance to the channel mean
ELASTIC = tuple((32 * a, 32 * s, 32 * f) for a, s, f in
                ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)))
# displacement scale, displacement smoothing sigma, affine jitter: all in pixels
PIXELATE = (0.95, 0.9, 0.85, 0.75, 0.65)  # side of the downscaled image, as a fraction
JPEG_QUALITY = (80, 65, 58, 50, 40)
SPATTER = ((0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
           (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1))
# mean, std, sigma, threshold, intensity (water) or mask sigma (mud), 0 water / 1 mud
SATURATE = ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2))  # factor on HSV saturation, then added
WATER_RGB = np.array([175, 238, 238]) / 255.0  # pale turquoise
MUD_RGB = np.array([63, 42, 20]) / 255.0

LEFT_OUT = {"frost": "overlays photographs of frost that the benchmark ships and that are not available here"}


def _unit(images: np.ndarray, dtype=np.float64) -> np.ndarray:
    return images.astype(dtype) / 255.0


def _uint8(x: np.ndarray) -> np.ndarray:
    """0..1 floats -> uint8 the way the benchmark stores them (``np.uint8`` truncates)."""
    return (np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)


def _blur(x: np.ndarray, sigma: float, *, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """scikit-image's ``gaussian`` per image and channel of a (n, h, w[, c]) batch."""
    sigmas = (0, sigma, sigma, 0)[:x.ndim]
    return ndimage.gaussian_filter(x, sigmas, mode=mode, truncate=truncate)


# --- noise ---------------------------------------------------------------------------------


def gaussian_noise(images, severity, rng):
    return _uint8(_unit(images) + rng.normal(scale=GAUSSIAN_NOISE[severity - 1], size=images.shape))


def shot_noise(images, severity, rng):
    rate = SHOT_NOISE[severity - 1]
    return _uint8(rng.poisson(_unit(images) * rate) / rate)


def impulse_noise(images, severity, rng):
    """Salt and pepper per value (scikit-image's ``random_noise(mode='s&p')``, half salt)."""
    x = _unit(images)
    flipped = rng.random(x.shape) <= IMPULSE_NOISE[severity - 1]
    salt = rng.random(x.shape) <= 0.5
    x[flipped & salt] = 1.0
    x[flipped & ~salt] = 0.0
    return _uint8(x)


def speckle_noise(images, severity, rng):
    x = _unit(images)
    return _uint8(x + x * rng.normal(scale=SPECKLE_NOISE[severity - 1], size=x.shape))


# --- blur ----------------------------------------------------------------------------------


def gaussian_blur(images, severity, rng):
    return _uint8(_blur(_unit(images), GAUSSIAN_BLUR[severity - 1]))


def glass_blur(images, severity, rng):
    """Blur, shuffle pixels locally, blur again."""
    sigma, delta, rounds = GLASS_BLUR[severity - 1]
    x = (_blur(_unit(images), sigma) * 255).astype(np.uint8)
    n, h, w, _ = x.shape
    for _ in range(rounds):
        dy, dx = rng.integers(-delta, delta, size=(2, n, h - 2 * delta, w - 2 * delta))
        x = local_copy(x, dy, dx, delta)
    return _uint8(_blur(_unit(x), sigma))


def local_copy(x: np.ndarray, dy: np.ndarray, dx: np.ndarray, delta: int) -> np.ndarray:
    """One round of glass blur's "swap": pixel (r, c) takes the value at (r + dy, c + dx), for
    r, c from the far edge down to ``delta + 1``.

    The benchmark swaps with ``x[a], x[b] = x[b], x[a]`` on numpy views, which copies ``x[b]``
    into ``x[a]`` and leaves ``x[b]`` as it was; that copy is what CIFAR-10-C holds, so it is
    what this does. Its offsets lie in ``[-delta, delta)``; with ``delta == 1`` (every severity)
    a pixel only reads from above or left of it, which the loop reaches later, so the loop's
    reads all see the round's input and the whole round is one gather.
    """
    if delta != 1:
        raise ValueError("glass blur's one-gather round holds for a max shift of 1 only")
    n, h, w, _ = x.shape
    rows = np.arange(delta + 1, h - delta + 1)[None, :, None] + dy  # n, h-2d, w-2d
    cols = np.arange(delta + 1, w - delta + 1)[None, None, :] + dx
    out = x.copy()
    out[:, delta + 1:h - delta + 1, delta + 1:w - delta + 1] = x[np.arange(n)[:, None, None], rows, cols]
    return out


def defocus_blur(images, severity, rng):
    radius, alias_sigma = DEFOCUS_BLUR[severity - 1]
    kernel = disk_kernel(radius, alias_sigma)[None, :, :, None]
    return _uint8(ndimage.correlate(_unit(images), kernel, mode="mirror"))  # OpenCV's default border


def disk_kernel(radius: float, alias_sigma: float) -> np.ndarray:
    """A normalised disk on a 17x17 grid, smoothed by OpenCV's 3x3 Gaussian (``disk`` of the
    benchmark, radius <= 8), cropped to where it is not zero."""
    span = np.arange(-8, 9)
    ys, xs = np.meshgrid(span, span, indexing="ij")
    disk = ((xs ** 2 + ys ** 2) <= radius ** 2).astype(np.float64)
    disk /= disk.sum()
    taps = np.exp(-np.arange(-1, 2) ** 2 / (2 * alias_sigma ** 2))
    taps /= taps.sum()
    smooth = ndimage.correlate1d(ndimage.correlate1d(disk, taps, axis=0, mode="mirror"), taps, axis=1, mode="mirror")
    keep = int(np.ceil(radius)) + 1
    return smooth[8 - keep:9 + keep, 8 - keep:9 + keep]


def motion_blur(images, severity, rng):
    radius, sigma = MOTION_BLUR[severity - 1]
    angles = rng.uniform(-45, 45, size=len(images))
    return np.clip(np.rint(motion_kernel_blur(_unit(images), radius, sigma, angles) * 255), 0, 255).astype(np.uint8)


def motion_kernel_blur(x: np.ndarray, radius: int, sigma: float, angles: np.ndarray) -> np.ndarray:
    """ImageMagick's ``-motion-blur radius x sigma + angle`` on a (n, h, w, c) batch.

    Its kernel is one-sided: ``2 radius + 1`` taps weighted by a half Gaussian
    ``exp(-i^2 / 2 sigma^2)`` (normalised), tap i reading the pixel ``i`` steps along the angle
    (rounded to the grid), the edge pixel repeated beyond the border.
    """
    n, h, w, _ = x.shape
    width = 2 * radius + 1
    taps = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2))
    taps /= taps.sum()
    radians = np.deg2rad(angles)
    out = np.zeros_like(x)
    batch = np.arange(n)[:, None, None]
    for i, weight in enumerate(taps):
        dy = np.ceil(i * np.sin(radians) - 0.5).astype(int)  # n
        dx = np.ceil(i * np.cos(radians) - 0.5).astype(int)
        rows = np.clip(np.arange(h)[None, :] + dy[:, None], 0, h - 1)[:, :, None]  # n, h, 1
        cols = np.clip(np.arange(w)[None, :] + dx[:, None], 0, w - 1)[:, None, :]  # n, 1, w
        out += weight * x[batch, rows, cols]
    return out


def zoom_blur(images, severity, rng):
    x = _unit(images, np.float32)
    factors = np.arange(1, ZOOM_BLUR[severity - 1], 0.01)
    total = np.zeros_like(x)
    for factor in factors:
        total += clipped_zoom(x, factor)
    return _uint8((x + total) / (len(factors) + 1))


def clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """Zoom into the centre of each (n, h, w, c) image by ``factor`` (bilinear), same size out."""
    h = x.shape[1]
    crop = int(np.ceil(h / factor))
    top = (h - crop) // 2
    zoomed = bilinear_zoom(x[:, top:top + crop, top:top + crop], round(crop * factor))
    trim = (zoomed.shape[1] - h) // 2
    return zoomed[:, trim:trim + h, trim:trim + h]


def bilinear_zoom(x: np.ndarray, size: int) -> np.ndarray:
    """scipy's ``ndimage.zoom(x, (1, f, f, 1), order=1)`` of square (n, s, s, c) images to
    ``size`` x ``size``, with the same corner-aligned grid, done as two gathers (a tenth of the time)."""
    side = x.shape[1]
    where = np.arange(size) * ((side - 1) / (size - 1)) if size > 1 else np.zeros(1)
    low = np.minimum(np.floor(where).astype(int), side - 1)
    high = np.minimum(low + 1, side - 1)
    frac = (where - low).astype(x.dtype)
    rows = x[:, low] * (1 - frac)[None, :, None, None] + x[:, high] * frac[None, :, None, None]
    return rows[:, :, low] * (1 - frac)[None, None, :, None] + rows[:, :, high] * frac[None, None, :, None]


# --- weather -------------------------------------------------------------------------------


def snow(images, severity, rng):
    mean, std, zoom, threshold, radius, sigma, keep = SNOW[severity - 1]
    x = _unit(images, np.float32)
    n, h, w, _ = x.shape
    flakes = clipped_zoom(rng.normal(mean, std, size=(n, h, w, 1)), zoom)
    flakes[flakes < threshold] = 0
    flakes = _unit(_uint8(flakes))  # the benchmark passes the layer through an 8-bit PNG
    angles = rng.uniform(-135, -45, size=n)
    flakes = np.rint(np.clip(motion_kernel_blur(flakes, radius, sigma, angles), 0, 1) * 255) / 255
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)  # OpenCV's RGB2GRAY
    x = keep * x + (1 - keep) * np.maximum(x, grey[..., None] * 1.5 + 0.5)
    return _uint8(x + flakes + np.rot90(flakes, 2, axes=(1, 2)))


def fog(images, severity, rng):
    strength, decay = FOG[severity - 1]
    x = _unit(images)
    n, h, w, _ = x.shape
    peak = x.max(axis=(1, 2, 3), keepdims=True)
    x = x + strength * plasma_fractal(n, 32, decay, rng)[:, :h, :w, None]
    return _uint8(x * peak / (peak + strength))


def plasma_fractal(n: int, size: int, decay: float, rng) -> np.ndarray:
    """``n`` diamond-square height maps (size x size, a power of two), each scaled to 0..1."""
    maps = np.zeros((n, size, size))
    step, wibble = size, 100.0

    def jittered(total):
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = maps[:, 0::step, 0::step]
        square = corners + np.roll(corners, -1, axis=1)
        square = square + np.roll(square, -1, axis=2)
        maps[:, half::step, half::step] = jittered(square)
        centres, corners = maps[:, half::step, half::step], maps[:, 0::step, 0::step]
        maps[:, 0::step, half::step] = jittered(centres + np.roll(centres, 1, axis=1)
                                                + corners + np.roll(corners, -1, axis=2))
        maps[:, half::step, 0::step] = jittered(centres + np.roll(centres, 1, axis=2)
                                                + corners + np.roll(corners, -1, axis=1))
        step //= 2
        wibble /= decay
    maps -= maps.min(axis=(1, 2), keepdims=True)
    return maps / maps.max(axis=(1, 2), keepdims=True)


def brightness(images, severity, rng):
    hsv = rgb_to_hsv(_unit(images))
    hsv[..., 2] = np.clip(hsv[..., 2] + BRIGHTNESS[severity - 1], 0, 1)
    return _uint8(hsv_to_rgb(hsv))


def saturate(images, severity, rng):
    factor, shift = SATURATE[severity - 1]
    hsv = rgb_to_hsv(_unit(images))
    hsv[..., 1] = np.clip(hsv[..., 1] * factor + shift, 0, 1)
    return _uint8(hsv_to_rgb(hsv))


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """scikit-image's conversion: hue in 0..1, hue and saturation 0 for greys; on a tie for the
    largest channel blue wins over green over red."""
    value = rgb.max(-1)
    delta = value - rgb.min(-1)
    safe = np.where(delta == 0, 1.0, delta)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    hue = np.where(b == value, 4 + (r - g) / safe, np.where(g == value, 2 + (b - r) / safe, (g - b) / safe))
    hue = np.where(delta == 0, 0.0, (hue / 6) % 1.0)
    saturation = np.where(delta == 0, 0.0, delta / np.where(value == 0, 1.0, value))
    return np.stack([hue, saturation, value], axis=-1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    sector = np.floor(h * 6)
    f = h * 6 - sector
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack([np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))])
    index = (sector.astype(int) % 6)[None, ..., None]
    return np.take_along_axis(table, np.broadcast_to(index, (1, *hsv.shape)), axis=0)[0]


# --- digital -------------------------------------------------------------------------------


def contrast(images, severity, rng):
    x = _unit(images)
    means = x.mean(axis=(1, 2), keepdims=True)
    return _uint8((x - means) * CONTRAST[severity - 1] + means)


def pixelate(images, severity, rng):
    from PIL import Image

    out = np.empty_like(images)
    for i, image in enumerate(images):
        h, w = image.shape[:2]
        small = (int(w * PIXELATE[severity - 1]), int(h * PIXELATE[severity - 1]))
        out[i] = np.asarray(Image.fromarray(image).resize(small, Image.BOX).resize((w, h), Image.BOX))
    return out


def jpeg_compression(images, severity, rng):
    from PIL import Image

    out = np.empty_like(images)
    for i, image in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=JPEG_QUALITY[severity - 1])
        out[i] = np.asarray(Image.open(buffer).convert("RGB"))
    return out


def elastic_transform(images, severity, rng):
    """A random affine warp (reflected border, as OpenCV's ``warpAffine``), then a smooth random
    displacement field (sampled bilinearly, reflected)."""
    scale, smooth, jitter = ELASTIC[severity - 1]
    x = _unit(images, np.float32)
    n, h, w, c = x.shape
    centre, side = np.float32(h // 2), h // 3
    anchors = np.array([[centre + side, centre + side], [centre + side, centre - side],
                        [centre - side, centre - side]])  # (x, y) points
    grid = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")  # rows, cols, channels
    out = np.empty_like(x)
    for i in range(n):
        moved = anchors + rng.uniform(-jitter, jitter, size=anchors.shape)
        warped = _affine_warp(x[i], anchors, moved, grid)
        dx = _blur(rng.uniform(-1, 1, size=(1, h, w)), smooth, mode="reflect", truncate=3)[0] * scale
        dy = _blur(rng.uniform(-1, 1, size=(1, h, w)), smooth, mode="reflect", truncate=3)[0] * scale
        coords = [grid[0] + dy[..., None], grid[1] + dx[..., None], grid[2]]
        out[i] = ndimage.map_coordinates(warped, coords, order=1, mode="reflect")
    return _uint8(out)


def _affine_warp(image: np.ndarray, src: np.ndarray, dst: np.ndarray, grid) -> np.ndarray:
    """The affine map taking the (x, y) points ``src`` to ``dst``, applied to ``image`` (h, w, c):
    each output pixel reads the input where the inverse map sends it."""
    matrix = np.linalg.solve(np.hstack([src, np.ones((3, 1))]), dst).T  # 2x3: [x', y'] = M [x, y, 1]
    inverse = np.linalg.inv(matrix[:, :2])
    xs, ys = grid[1] - matrix[0, 2], grid[0] - matrix[1, 2]
    src_x = inverse[0, 0] * xs + inverse[0, 1] * ys
    src_y = inverse[1, 0] * xs + inverse[1, 1] * ys
    return ndimage.map_coordinates(image, [src_y, src_x, grid[2]], order=1, mode="mirror")


def spatter(images, severity, rng):
    mean, std, sigma, threshold, amount, mud = SPATTER[severity - 1]
    x = _unit(images, np.float32)
    n, h, w, _ = x.shape
    liquid = _blur(rng.normal(mean, std, size=(n, h, w)), sigma)
    liquid[liquid < threshold] = 0
    if mud:
        mask = _blur((liquid > threshold).astype(np.float32), amount)
        mask[mask < 0.8] = 0
        return _uint8(x * (1 - mask[..., None]) + MUD_RGB * mask[..., None])
    water = np.stack([_water_layer(layer) for layer in liquid])  # n, h, w
    water = water / water.max(axis=(1, 2), keepdims=True).clip(min=1e-12) * amount
    return _uint8(x + water[..., None] * WATER_RGB)


def _water_layer(liquid: np.ndarray) -> np.ndarray:
    """The benchmark's drop shading: distance to the drops' Canny edges, capped at 20, equalised,
    embossed, times the liquid. The distance is exact Euclidean (OpenCV's is a 5x5 chamfer
    approximation)."""
    level = np.clip(liquid * 255, 0, 255).astype(np.uint8)
    edges = canny_edges(level, 50, 150)
    cap = 20.0  # OpenCV's distance with no edge at all is huge: the cap everywhere
    distance = np.minimum(ndimage.distance_transform_edt(~edges), cap) if edges.any() else np.full(level.shape, cap)
    distance = _box3(distance).astype(np.uint8)
    emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float64)
    shaded = np.clip(np.rint(ndimage.correlate(equalise_histogram(distance).astype(np.float64), emboss,
                                               mode="mirror")), 0, 255)
    return level.astype(np.float32) * np.rint(_box3(shaded)).astype(np.float32)  # OpenCV's blur of uint8 rounds


def _box3(x: np.ndarray) -> np.ndarray:
    """OpenCV's ``blur(x, (3, 3))``: a 3x3 mean, reflected border."""
    return ndimage.uniform_filter(x.astype(np.float64), size=3, mode="mirror")


def equalise_histogram(image: np.ndarray) -> np.ndarray:
    """OpenCV's ``equalizeHist`` of a uint8 image: the cumulative histogram, from its first
    occupied level, stretched over 0..255."""
    counts = np.bincount(image.ravel(), minlength=256)
    occupied = np.flatnonzero(counts)
    if len(occupied) <= 1 or counts[occupied[0]] == image.size:
        return image.copy()
    cumulative = np.cumsum(counts) - counts[occupied[0]]
    table = np.clip(np.rint(cumulative * 255.0 / (image.size - counts[occupied[0]])), 0, 255)
    table[:occupied[0]] = 0
    return table.astype(np.uint8)[image]


def canny_edges(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Canny's edges of a uint8 image as OpenCV finds them by default: 3x3 Sobel gradients,
    L1 magnitude, thinning across the gradient, hysteresis (8-connected) between ``low`` and
    ``high``."""
    x = image.astype(np.float64)
    gx = ndimage.sobel(x, axis=1, mode="nearest")  # OpenCV's Canny replicates the border
    gy = ndimage.sobel(x, axis=0, mode="nearest")
    magnitude = np.abs(gx) + np.abs(gy)
    angle = (np.rad2deg(np.arctan2(gy, gx)) + 180) % 180
    padded = np.pad(magnitude, 1)
    h, w = x.shape
    neighbours = {0: (0, 1), 45: (1, 1), 90: (1, 0), 135: (1, -1)}
    thin = np.zeros_like(magnitude, dtype=bool)
    for direction, (dr, dc) in neighbours.items():
        near = np.minimum(np.abs(angle - direction), 180 - np.abs(angle - direction)) <= 22.5
        ahead = padded[1 + dr:1 + dr + h, 1 + dc:1 + dc + w]
        behind = padded[1 - dr:1 - dr + h, 1 - dc:1 - dc + w]
        thin |= near & (magnitude > ahead) & (magnitude >= behind)
    weak = thin & (magnitude > low)
    labels, count = ndimage.label(weak, structure=np.ones((3, 3)))
    strong = np.unique(labels[weak & (magnitude > high)])
    return np.isin(labels, strong[strong > 0])


# --- the catalogue -------------------------------------------------------------------------


@dataclass(frozen=True)
class Corruption:
    """One corruption: its CIFAR-10-C file name, family, whether it is one of the 15 standard
    ones (the mean corruption accuracy averages those), and the function."""

    name: str
    family: str
    standard: bool
    apply: Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in (
    Corruption("gaussian_noise", "noise", True, gaussian_noise),
    Corruption("shot_noise", "noise", True, shot_noise),
    Corruption("impulse_noise", "noise", True, impulse_noise),
    Corruption("defocus_blur", "blur", True, defocus_blur),
    Corruption("glass_blur", "blur", True, glass_blur),
    Corruption("motion_blur", "blur", True, motion_blur),
    Corruption("zoom_blur", "blur", True, zoom_blur),
    Corruption("snow", "weather", True, snow),
    Corruption("fog", "weather", True, fog),
    Corruption("brightness", "weather", True, brightness),
    Corruption("contrast", "digital", True, contrast),
    Corruption("elastic_transform", "digital", True, elastic_transform),
    Corruption("pixelate", "digital", True, pixelate),
    Corruption("jpeg_compression", "digital", True, jpeg_compression),
    Corruption("speckle_noise", "noise", False, speckle_noise),
    Corruption("gaussian_blur", "blur", False, gaussian_blur),
    Corruption("spatter", "weather", False, spatter),
    Corruption("saturate", "digital", False, saturate),
)}
STANDARD_COUNT = 15  # CIFAR-10-C's standard set, frost included


def corrupt(name: str, images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Apply corruption ``name`` at ``severity`` to uint8 RGB ``images``.

    Args:
        name: a key of ``CORRUPTIONS`` (CIFAR-10-C's file names: ``gaussian_noise``, ...).
        images: uint8 (n, h, w, 3), or one image (h, w, 3); CIFAR's 32x32 is what the
            parameters were chosen for.
        severity: 1 (mild) .. 5 (harsh).
        rng: the source of every random draw.
    Returns:
        uint8, the shape of ``images``.
    Raises:
        ValueError: for an unknown name, a severity outside 1..5, or images that are not uint8 RGB.
    """
    if name not in CORRUPTIONS:
        why = f" ({LEFT_OUT[name]})" if name in LEFT_OUT else ""
        raise ValueError(f"no corruption {name!r}{why}; choose one of {', '.join(CORRUPTIONS)}")
    if severity not in range(1, SEVERITIES + 1):
        raise ValueError(f"severity must be 1..{SEVERITIES}, not {severity!r}")
    images = np.asarray(images)
    single = images.ndim == 3
    batch = images[None] if single else images
    if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (n, h, w, 3) or (h, w, 3), not {images.dtype} {images.shape}")
    out = CORRUPTIONS[name].apply(np.ascontiguousarray(batch), severity, rng)
    return out[0] if single else out
