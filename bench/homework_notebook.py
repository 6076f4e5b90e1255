"""The homework notebook's data path, shared by the benches that compare against it.

    NotebookDataset(images, labels)[i] -> (ToTensor(PIL image i), label i)

What the homework wrote: a torchvision-style dataset that converts one PIL image at a time with
``transforms.ToTensor()``, read through a ``DataLoader`` of batches of 100.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision import transforms


class NotebookDataset(torch.utils.data.Dataset):
    """index -> (float32 (3, 32, 32) in 0..1 from ToTensor, int label), one image at a time."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels
        self.to_tensor = transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.to_tensor(Image.fromarray(self.images[i])), int(self.labels[i])
