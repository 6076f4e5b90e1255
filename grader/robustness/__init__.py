"""Robustness under common corruptions: CIFAR-10-C's corruptions, regenerated locally.

    corruptions   the corruption functions and their parameters (numpy, scipy, Pillow)
    cache         the fixed seeded subset, corrupted once per data and code version, cached
    measure       logits -> Robustness (accuracy per corruption, per severity, overall)
    request       what a grade adds to the child's request, and how many images per cell

Kept light: the command line reads ``DEFAULT_N`` from here without loading scipy.
"""

# Test images per corruption and severity when none is given: 18 x 5 x 100 = 9,000 images, a few
# seconds of inference for the homework's networks on 2 cores (docs/benchmarks.md).
DEFAULT_N = 100
