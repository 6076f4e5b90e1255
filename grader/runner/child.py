"""The untrusted side: load a submission and turn images into logits. Never sees labels.

Run as ``python -m grader.runner.child``. Reads one request frame on stdin (header: form, paths,
input normalisation; array: uint8 images (n, 32, 32, 3) in a shuffled order), writes one reply
frame (header: model info or an error; array: float32 logits (n, classes)) to the real stdout.
Before anything of the submission's runs, the real stdout moves to a private descriptor and fd 1
points at stderr, so a student's ``print`` cannot corrupt the reply.

This module is the process; the work is in ``loaders`` (the submission's forms), ``infer``
(images to logits, through the faster copies of ``tiers``, a batch at a time by ``batches``) and
``describe`` (parameters, layers, MACs), which share ``network`` (the loaded network and its input).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch

from grader.allocator import MIN_CAPPED_BYTES, keep_freed_memory
from grader.errors import GraderError
from grader.runner.batches import memory_cap, out_of_memory
from grader.runner.describe import describe_model
from grader.runner.infer import infer
from grader.runner.loaders import load
from grader.runner.network import Inference, one_line
from grader.runner.protocol import decode, encode


def serve(request: dict, images: np.ndarray) -> tuple[dict, np.ndarray]:
    """Load, describe, infer. Returns the reply header and the logits."""
    config = Inference(batch_size=int(request.get("batch_size", Inference.batch_size)),
                       threads=int(request.get("threads", 0)))
    torch.set_num_threads(config.threads or max(1, len(os.sched_getaffinity(0))))
    torch.manual_seed(0)  # a network that still samples (dropout left on) is at least repeatable
    started = time.perf_counter()
    loaded = load(request)
    loaded_at = time.perf_counter()
    precision: dict = {}
    if request.get("variants"):  # the same images under each input convention, one block each
        blocks = []
        for variant in request["variants"]:
            loaded.input = dict(variant)
            blocks.append(infer(loaded, images, config=config, stats={}))
        logits = np.concatenate(blocks)
    else:
        logits = infer(loaded, images, config=config, stats=precision)
    inferred_at = time.perf_counter()
    info = describe_model(loaded)
    info["precision"] = precision
    n = max(1, len(images))
    info.update({
        "form": loaded.form,
        "input": loaded.input,
        "history": loaded.history,
        "notes": loaded.notes,
        "device": "cpu",
        "latency_ms_per_image": 1000 * (inferred_at - loaded_at) / n,
        "timings": {"load": loaded_at - started, "inference": inferred_at - loaded_at,
                    "describe": time.perf_counter() - inferred_at},
        "torch": torch.__version__,
    })
    return info, logits


def main() -> int:
    """The child process: one request on stdin, one reply on the real stdout; always exits 0
    (a failure is the reply's ``error``, which the parent reads)."""
    if memory_cap() >= MIN_CAPPED_BYTES:  # activations reused, not page-faulted afresh (grader.allocator)
        keep_freed_memory()
    private = os.dup(1)
    os.dup2(2, 1)  # from here on, anything printed to fd 1 lands on stderr
    sys.stdout = sys.stderr
    try:
        request, images = decode(sys.stdin.buffer.read())
        reply, logits = serve(request, images)
    except GraderError as exc:
        reply, logits = {"error": exc.message, "hint": exc.hint}, None
    except MemoryError:
        error = out_of_memory("the submission")
        reply, logits = {"error": error.message, "hint": error.hint}, None
    except BaseException as exc:  # a submission can raise anything, SystemExit included
        reply, logits = {"error": f"the submission crashed the loader: {one_line(exc)[:500]}",
                         "hint": "run it locally with the same torch version"}, None
    with os.fdopen(private, "wb") as out:
        out.write(encode(reply, logits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
