"""CIFAR-10 data layer: find a source, convert it once into a cache of uint8 arrays, load it.

    load_cifar10(data=None) -> Cifar10

Sources (see ``sources.py``): the official python archive or its extracted folder, an image-folder
tree (``train/<class>/*``, ``test/<class>/*``) or a ``.tar.gz`` of one, or the official download.
"""

from grader.data.dataset import CLASSES, Cifar10, fingerprint
from grader.data.locate import load_cifar10, resolve_source

__all__ = ["CLASSES", "Cifar10", "fingerprint", "load_cifar10", "resolve_source"]
