"""The C allocator, told to keep freed memory for reuse: each forward pass then runs at one speed.

glibc's malloc serves a large block (above ``M_MMAP_THRESHOLD``, 128 KiB at start) with a fresh
``mmap`` and unmaps it when freed; it raises that threshold as it sees such blocks freed, and
returns free memory at the top of the heap to the kernel once it exceeds ``M_TRIM_THRESHOLD``.
A network's activations are blocks of a few MiB, allocated and freed on every batch, so whether
they come back from the heap or as new pages, zeroed by the kernel at one page fault each,
depends on what the process happened to allocate before. On the 2-core EPYC the same eager
float32 homework network ran the 10,000 test images in 6.3-6.9 s in some processes and 9.5-11.4 s
in others (the memory-bound layers, ReLU and pooling, twice as slow), and a homework training
step took 185-192 ms or 196-216 ms. Fixing the two thresholds (mmap at 32 MiB, glibc's largest
on 64-bit; trim at 256 MiB) made every process the quick kind. The cost is up to 256 MiB of freed
memory held for reuse instead of returned.

``keep_freed_memory`` is called by ``grader train``, by bench/bench_eval.py for both of its sides,
and by the grading child before it reads the images when its memory cap (RLIMIT_DATA, which
counts the heap's free holes too) is at least ``MIN_CAPPED_BYTES``: under a tighter cap, memory
held for reuse could fail a network that fits without it.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc refuses more than HEAP_MAX_SIZE / 2: 32 MiB on 64-bit
TRIM_THRESHOLD = 256 << 20
MIN_CAPPED_BYTES = 2 << 30  # see the module docstring


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds (see the module docstring); process-wide, idempotent.

    Returns whether both took effect: False where the C library has no ``mallopt`` (macOS,
    Windows: nothing changes) or refuses a value (the trim threshold is then left alone).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
