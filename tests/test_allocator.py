"""grader.allocator: freed activations are reused, not page-faulted afresh on every batch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from grader.allocator import keep_freed_memory

# A forward pass in miniature: blocks of a few MiB, written, freed, again and again. Prints the
# minor page faults of the last 20 rounds (each round touches 15 MiB: 3,840 pages).
ROUNDS = """
import resource, sys
import numpy as np
from grader.allocator import keep_freed_memory
if sys.argv[1] == "fixed":
    assert keep_freed_memory()
def forward():
    a = np.ones(6 << 18, np.float32)
    b = np.ones(6 << 18, np.float32)
    c = np.ones(3 << 18, np.float32)
    del a, b, c
forward(); forward()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    forward()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    ran = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    return int(ran.stdout)


def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    if not keep_freed_memory():
        pytest.skip("this C library has no mallopt (not glibc)")
    as_it_is = page_faults("as-it-is")
    if as_it_is < 3_840:
        pytest.skip(f"this allocator already reuses the blocks ({as_it_is} faults in 20 rounds)")
    assert page_faults("fixed") < 400  # not even one round's worth of fresh pages
