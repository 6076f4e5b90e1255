"""Running a network over images, a batch at a time, with its output checked.

The child's one way to call a submitted forward: uint8 images (or their float32 input) in,
float32 logits out, every batch's output checked for type and shape, and every failure a
``GraderError`` that says what the network must do.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from grader.errors import GraderError
from grader.messages import say
from grader.runner.network import Loaded, one_line, to_input


def run_chunks(forward: Callable, images: np.ndarray | torch.Tensor, loaded: Loaded,
                batch: int, pad: bool = False) -> torch.Tensor:
    """float32 logits (n, k) of ``images``, ``batch`` at a time (checked by _run_batch).

    ``images``: uint8 (n, 32, 32, 3), converted a batch at a time, or their float32 input
    (n, 3, 32, 32) already made by ``to_input``. ``pad``: a short last batch is padded with zero
    images to ``batch`` (always, for a network with a static batch).
    """
    outputs = []
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        y = _run_batch(forward, _batch_input(chunk, loaded, batch, pad))
        outputs.append(y.detach().to(torch.float32)[:len(chunk)])
    try:
        return torch.cat(outputs)
    except RuntimeError:
        raise GraderError(say("run.logits_vary_batches", count=len({o.shape[1] for o in outputs}))) from None


def _batch_input(chunk: np.ndarray | torch.Tensor, loaded: Loaded, batch: int, pad: bool) -> torch.Tensor:
    """The network's input for ``chunk`` (images, or their input: then a copy, which the network
    may overwrite in place without touching the caller's); padded with zero images to ``batch``
    when asked, or for a static exported batch."""
    x = chunk.clone() if isinstance(chunk, torch.Tensor) else to_input(chunk, loaded.input)
    if (pad or loaded.fixed_batch) and len(x) < batch:  # the padding rows are dropped by run_chunks
        c, h, w = x.shape[1:]
        zeros = np.zeros((batch - len(x), h, w, c), np.uint8)  # n, h, w, c
        x = torch.cat([x, to_input(zeros, loaded.input)])
    return x


def memory_cap() -> float:
    """This process's cap on private memory (RLIMIT_DATA, as the sandbox sets it), in bytes;
    infinity without one."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    return float("inf") if soft == resource.RLIM_INFINITY else float(soft)


def out_of_memory(what: str) -> GraderError:
    """The error for ``what`` (a Message naming it: ``say("run.the_submission")``) having run out of
    the child's memory cap."""
    cap = memory_cap()
    cap = "" if cap == float("inf") else say("run.memory_cap", size=f"{int(cap) >> 20} MiB")
    return GraderError(say("run.out_of_memory", what=what, cap=cap))


def _is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError, or torch's CPU allocator failing (a RuntimeError that says so)."""
    return isinstance(exc, MemoryError) or "can't allocate memory" in str(exc)


def _run_batch(forward: Callable, x: torch.Tensor) -> torch.Tensor:
    try:
        y = forward(x)
    except Exception as exc:
        if _is_out_of_memory(exc):
            raise out_of_memory(say("run.the_network_batch", count=x.shape[0])) from None
        raise GraderError(say("run.batch_failed", shape=str(tuple(x.shape)), reason=one_line(exc)[:400])) from None
    if not isinstance(y, torch.Tensor):
        raise GraderError(say("run.not_a_tensor", kind=type(y).__name__))
    if y.ndim != 2 or y.shape[0] != x.shape[0]:
        raise GraderError(say("run.bad_shape", shape=str(tuple(y.shape)), count=x.shape[0]))
    return y
