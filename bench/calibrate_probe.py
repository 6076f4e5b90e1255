"""Calibrate the memorisation probe: how much honest networks and lookup tables lose on altered
copies of test images.

    .venv/bin/python bench/calibrate_probe.py [HAND_IN ...] [--count 2000] [--data PATH]

Honest networks: the hand-ins named, in any form the grader reads (by default the example
submissions: the homework net, s2400001, trained without augmentation; the fast recipe, s2400002,
with flips), each run by the sandboxed grading child with its own ``[input]``. Cheats: a nearest-neighbour lookup over the test images (what a stock nn.Sequential of AvgPool2d,
Flatten and two Linear layers computes), and one over the training and test images together.
Each row is a network, each column an alteration: accuracy on ``--count`` test images, and the
drop from clean. The probe's alterations are chosen where honest networks lose little and the
lookups collapse; the figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def shift(images: np.ndarray, pixels: int, rng: np.random.Generator) -> np.ndarray:
    """Each image moved by ``pixels`` along a random axis and direction (edges repeated)."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0)), mode="edge")
    out = np.empty_like(images)
    for i in range(n):
        dy, dx = [(0, 2 * pixels), (2 * pixels, 0), (pixels, 0), (pixels, 2 * pixels)][rng.integers(4)]
        dy, dx = (pixels, dx) if rng.integers(2) else (dy, pixels)
        out[i] = padded[i, dy:dy + h, dx:dx + w]
    return out


def noise(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(images + rng.normal(0, sigma, images.shape), 0, 255).round().astype(np.uint8)


def crop_resize(images: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``size`` crop of each image, scaled back to 32x32 (bilinear)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    out = torch.empty_like(x)
    for i in range(len(x)):
        top, left = rng.integers(0, 33 - size, 2)
        crop = x[i:i + 1, :, top:top + size, left:left + size]
        out[i:i + 1] = torch.nn.functional.interpolate(crop, size=32, mode="bilinear", align_corners=False)
    return out.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def alterations(rng: np.random.Generator) -> dict:
    return {
        "clean": lambda x: x,
        "hflip": lambda x: x[:, :, ::-1].copy(),
        "shift 1": lambda x: shift(x, 1, rng), "shift 2": lambda x: shift(x, 2, rng),
        "shift 3": lambda x: shift(x, 3, rng), "shift 4": lambda x: shift(x, 4, rng),
        "noise 8": lambda x: noise(x, 8, rng), "noise 16": lambda x: noise(x, 16, rng),
        "crop 26": lambda x: crop_resize(x, 26, rng),
        "hflip+shift 3": lambda x: shift(x[:, :, ::-1].copy(), 3, rng),
    }


def hand_in_predictor(path: Path):
    """Any hand-in the grader reads (file, folder, archive, run folder, with its ``[input]``), run
    by the sandboxed child on every altered set in one request."""
    from grader.limits import Limits
    from grader.runner.launch import run_submission
    from grader.submission import inspect_submission

    def predict_all(altered: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = np.concatenate(list(altered.values()))
        with inspect_submission(path) as submission:
            logits = run_submission(submission, images, classes=10, limits=Limits(wall_seconds=1800, memory_mb=8192)).logits
        cuts = np.cumsum([len(v) for v in altered.values()])[:-1]
        return dict(zip(altered, np.split(logits.argmax(1), cuts)))
    return predict_all


def lookup_predictor(images: np.ndarray, labels: np.ndarray):
    """Nearest neighbour on 2x2-average-pooled, unit-length pixels: a lookup table of ``images``."""
    def features(x: np.ndarray) -> np.ndarray:
        pooled = x.reshape(len(x), 16, 2, 16, 2, 3).mean(axis=(2, 4)).reshape(len(x), -1)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-6)
    table = torch.from_numpy(features(images.astype(np.float32)))

    def predict(x: np.ndarray) -> np.ndarray:
        query = torch.from_numpy(features(x.astype(np.float32)))
        return labels[torch.cat([(q @ table.T).argmax(1) for q in query.split(500)]).numpy()]
    return lambda altered: {name: predict(images) for name, images in altered.items()}


def networks(data, hand_ins: list[Path]) -> dict:
    both_images = np.concatenate([data.train_images, data.test_images])
    both_labels = np.concatenate([data.train_labels, data.test_labels])
    return {**{path.name: hand_in_predictor(path) for path in hand_ins},
            "lookup: test set": lookup_predictor(data.test_images, data.test_labels),
            "lookup: train+test": lookup_predictor(both_images, both_labels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("hand_ins", nargs="*", type=Path,
                        default=[ROOT / "submissions" / "s2400001.pth", ROOT / "submissions" / "s2400002"])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    from grader.data import load_cifar10

    data = load_cifar10(args.data)
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(len(data.test_labels), args.count, replace=False))
    images, labels = data.test_images[pick], data.test_labels[pick]
    altered = {name: make(images) for name, make in alterations(np.random.default_rng(1)).items()}
    print(f"accuracy on {args.count} test images (drop from clean in brackets)")
    print("| network | " + " | ".join(altered) + " |")
    print("|---" * (len(altered) + 1) + "|")
    for name, predict_all in networks(data, args.hand_ins).items():
        start = time.perf_counter()
        accuracy = {k: float((predicted == labels).mean()) for k, predicted in predict_all(altered).items()}
        cells = [f"{accuracy[k]:.1%}" + ("" if k == "clean" else f" ({accuracy['clean'] - accuracy[k]:+.1%})")
                 for k in altered]
        print(f"| {name} | " + " | ".join(cells) + f" |   ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
