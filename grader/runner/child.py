"""The untrusted side: load a submission and turn images into logits. Never sees labels.

Run as ``python -m grader.runner.child``. Reads request frames on stdin, each a message
(``grader.sandbox.messages``): the first loads the network (header: form, paths, input
normalisation; array: uint8 images (n, 32, 32, 3) in a shuffled order); a later one runs images
on that network under other input conventions (a diagnosis). Writes one reply frame per request
(header: model info or an error; array: float32 logits (n, classes)) to the real stdout, and
exits when stdin ends.
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
from grader.messages import notes_detail, say
from grader.runner.batches import memory_cap, out_of_memory
from grader.runner.describe import describe_model
from grader.runner.infer import infer
from grader.runner.loaders import load
from grader.runner.network import Inference, Loaded, one_line, to_input
from grader.runner.protocol import decode, encode
from grader.sandbox.messages import message, read_message

MAX_REQUEST_BYTES = 4 << 30  # the grading process's own requests: a sanity bound, not a cap


def serve(request: dict, images: np.ndarray) -> tuple[dict, np.ndarray]:
    """Load, describe, infer. Returns the reply header and the logits."""
    info, logits, _ = first_answer(request, images)
    return info, logits


def first_answer(request: dict, images: np.ndarray) -> tuple[dict, np.ndarray, Loaded]:
    """The conversation's first request: load the network, infer, describe. Returns the reply
    header, the logits and the loaded network (which later requests reuse)."""
    config = _config(request)
    torch.set_num_threads(config.threads or max(1, len(os.sched_getaffinity(0))))
    torch.manual_seed(0)  # a network that still samples (dropout left on) is at least repeatable
    started = time.perf_counter()
    loaded = load(request)
    loaded_at = time.perf_counter()
    precision: dict = {}
    if request.get("variants"):
        logits = under_variants(loaded, images, request["variants"], config)
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
        "notes_detail": notes_detail(loaded.notes),
        "device": "cpu",
        "latency_ms_per_image": 1000 * (inferred_at - loaded_at) / n,
        "timings": {"load": loaded_at - started, "inference": inferred_at - loaded_at,
                    "describe": time.perf_counter() - inferred_at},
        "torch": torch.__version__,
    })
    return info, logits, loaded


def later_answer(loaded: Loaded, request: dict, images: np.ndarray) -> tuple[dict, np.ndarray]:
    """A follow-up request on the network already loaded: the images under each of its
    ``variants`` (input conventions), one block of logits per variant."""
    started = time.perf_counter()
    variants = request.get("variants") or [loaded.input]
    logits = under_variants(loaded, images, variants, _config(request))
    return {"timings": {"inference": time.perf_counter() - started}}, logits


def under_variants(loaded: Loaded, images: np.ndarray, variants: list, config: Inference) -> np.ndarray:
    """The same images under each input convention (an ``[input]`` table), one block each: every
    block's input made first, then one pass through the tiers (set up once, not per block)."""
    x = torch.cat([to_input(images, dict(variant) if variant else loaded.input or {}) for variant in variants])
    return infer(loaded, x, config=config, stats={})


def _config(request: dict) -> Inference:
    return Inference(batch_size=int(request.get("batch_size", Inference.batch_size)),
                     threads=int(request.get("threads", 0)))


def answer(payload: bytes, loaded: Loaded | None) -> tuple[dict, np.ndarray | None, Loaded | None]:
    """One request's reply header and logits, and the network for the next; never raises (a
    failure is the reply's ``error``, and a failed first request ends the conversation)."""
    try:
        request, images = decode(payload)
        if loaded is None:
            return first_answer(request, images)
        return (*later_answer(loaded, request, images), loaded)
    except GraderError as exc:
        return _error_reply(exc), None, loaded
    except MemoryError:
        return _error_reply(out_of_memory(say("run.the_submission"))), None, loaded
    except BaseException as exc:  # a submission can raise anything, SystemExit included
        return _error_reply(GraderError(say("load.crashed", reason=one_line(exc)[:500]))), None, loaded


def _error_reply(error: GraderError) -> dict:
    """A failed request's reply: the English words, and the catalogue message the parent says again."""
    return {"error": error.message, "hint": error.hint,
            **({"detail": error.detail.to_json()} if error.detail is not None else {})}


def main() -> int:
    """The child process: requests on stdin, one reply each on the real stdout, until stdin
    ends; always exits 0 (a failure is the reply's ``error``, which the parent reads)."""
    if memory_cap() >= MIN_CAPPED_BYTES:  # activations reused, not page-faulted afresh (grader.allocator)
        keep_freed_memory()
    private = os.dup(1)
    os.dup2(2, 1)  # from here on, anything printed to fd 1 lands on stderr
    sys.stdout = sys.stderr
    loaded = None
    with os.fdopen(private, "wb") as out:
        while (payload := read_message(sys.stdin.buffer, MAX_REQUEST_BYTES)) is not None:
            reply, logits, loaded = answer(payload, loaded)
            out.write(message(encode(reply, logits)))
            out.flush()
            if loaded is None:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
