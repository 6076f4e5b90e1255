"""The parent side: start the child on a submission, send shuffled images, check the logits.

    run_submission(submission, images, ...) -> ChildOutput

Labels never leave the grading process. What comes back is untrusted: its frame is parsed with
JSON and ``np.load(allow_pickle=False)`` only, and the logits are validated (shape, dtype,
finite) before anyone uses them.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from typing import Callable
from pathlib import Path

import numpy as np

from grader.errors import GraderError
from grader.messages import Message, read_notes, say
from grader.limits import Limits, MiB
from grader.integrity.secret import seed_from
from grader.runner.protocol import BATCH_SIZE, BLOCK_NAME_CHARS, MAX_BLOCKS, ProtocolError, decode, encode
from grader.sandbox.messages import complete_messages, message
from grader.submission import Submission
from grader.submission.forms import import_time_statements, read_import_time_work

NO_SANDBOX_WARNING = ("graded WITHOUT the sandbox (--no-sandbox): the submission's code ran with the "
                      "grader's own permissions")


@dataclass
class ChildOutput:
    """What the child returned, checked.

    Attributes:
        logits: float32 (n, classes), in the caller's image order.
        info: the child's model description (``parameters``, ``macs_per_image``, ``layers``,
            ``blocks``, ``latency_ms_per_image``, ``form``, ``input``, ``history``, ``notes``,
            ``timings``).
        sandbox: ``{"enabled": bool, "warning": str | None}``.
    """

    logits: np.ndarray
    info: dict
    sandbox: dict = field(default_factory=dict)
    more: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class FollowUp:
    """A later request to the same child, on the network it already loaded: ``images`` (uint8,
    (n, 32, 32, 3)) under each of ``variants`` (``[input]`` tables). Its logits come back as one
    (n, classes) block per variant, in ``images``' order."""

    images: np.ndarray
    variants: list[dict]


# Given the replies so far (the first, checked, then each follow-up's logits), the next request.
Planner = Callable[[ChildOutput], "FollowUp | None"]


def run_submission(submission: Submission, images: np.ndarray, *, classes: int, seed_text: str = "",
                   sandbox: bool = True, limits: Limits = Limits(), batch_size: int = BATCH_SIZE,
                   threads: int = 0, variants: list[dict] | None = None,
                   plan: Planner | None = None) -> ChildOutput:
    """Run ``submission`` on uint8 ``images`` (n, 32, 32, 3) in a child; return checked logits.

    Args:
        classes: the number of classes the logits must have.
        seed_text: mixed into the shuffle seed (the data fingerprint) with the submission's hash
            and the grading secret (``grader.integrity.secret``), so the order is fixed for a given
            submission, data and secret, and unknown in advance to the submission.
        sandbox: False runs the child unsandboxed, and the result says so.
        limits: the rubric's limits on the child (its caps follow from them: ``sandbox_caps``).
        batch_size: images per forward pass in the child.
        threads: intra-op threads in the child; 0 means all cores it may use.
        variants: input tables (``[input]``'s scale, mean, std, channels) to run every image under
            instead of the submission's own; the logits are then one (n, classes) block per variant.
        plan: hold a conversation: called with the checked first reply, and again after each
            follow-up (its logits appended to ``more``), it returns the next FollowUp or None. The
            child keeps the network loaded meanwhile; the limits hold for the whole conversation.
            A follow-up that fails or comes back malformed ends it, and the first reply stands.

    Raises:
        GraderError: when the child fails, times out, or returns something malformed; the message
            is the child's own when it diagnosed the submission.
    """
    seed = seed_from(submission.sha256, seed_text)
    order = np.random.default_rng(seed).permutation(len(images))
    request = {
        "form": submission.form,
        "weights": str(submission.weights),
        "entry": [str(submission.entry[0]), submission.entry[1]] if submission.entry else None,
        "classes": [binding.to_request() for binding in submission.classes],
        "input": submission.input,
        "batch_size": batch_size,
        "threads": threads,
        **({"variants": variants} if variants else {}),
    }
    talk = _Conversation(submission, classes, seed, order, len(variants) if variants else 1, plan)
    result, sandbox_info = launch_child(message(encode(request, images[order])), submission=submission,
                                        sandbox=sandbox, limits=limits, follow_up=talk.answer if plan else None)
    replies, _ = complete_messages(result.stdout, most=talk.asked + 1)  # never parse a flood whole
    if len(replies) > talk.asked:
        raise GraderError(say("run.extra_reply", file=submission.weights.name))
    info, shuffled = read_reply(result, submission, replies[0] if replies else b"", answered=talk.first is not None)
    logits = talk.unshuffle(shuffled, order, len(variants) if variants else 1)
    return ChildOutput(logits=logits, info=info, sandbox=sandbox_info, more=talk.more)


class _Conversation:
    """The parent's side of a conversation: each reply checked, the next request planned."""

    def __init__(self, submission: Submission, classes: int, seed: int, order: np.ndarray, blocks: int,
                 plan: Planner | None):
        self.submission, self.classes, self.seed, self.plan = submission, classes, seed, plan
        self.expected = (order, blocks)  # what the reply in flight answers: its shuffle, its blocks
        self.first: ChildOutput | None = None
        self.more: list[np.ndarray] = []
        self.asked = 1  # requests written: a reply beyond them is the submission's own message

    def unshuffle(self, shuffled: np.ndarray, order: np.ndarray, blocks: int) -> np.ndarray:
        """The logits in the caller's image order, after checking them; row i of each block of
        ``shuffled`` is image ``order[i]``."""
        n = len(order)
        check_logits(shuffled, n=n * blocks, classes=self.classes)
        logits = np.empty_like(shuffled)
        for b in range(blocks):
            logits[b * n + order] = shuffled[b * n:(b + 1) * n]
        return logits

    def answer(self, payload: bytes) -> bytes | None:
        """The next request to write, given the child's latest reply; None ends the conversation."""
        try:
            order, blocks = self.expected
            header, shuffled = decode(payload)
            if "error" in header or shuffled is None:
                return None
            if self.first is None:
                if reply_problem(header):
                    return None
                self.first = ChildOutput(logits=self.unshuffle(shuffled, order, blocks), info=header)
            else:
                self.more.append(self.unshuffle(shuffled, order, blocks))
            step = self.plan(ChildOutput(self.first.logits, self.first.info, more=list(self.more)))
        except (ProtocolError, GraderError):
            return None
        if step is None:
            return None
        order = np.random.default_rng([self.seed, len(self.more) + 1]).permutation(len(step.images))
        self.expected = (order, len(step.variants))
        self.asked += 1
        return message(encode({"variants": step.variants}, step.images[order]))


def launch_child(request: bytes, *, submission: Submission, sandbox: bool, limits: Limits, follow_up=None):
    """Start ``python -m grader.runner.child`` (sandboxed unless told not to).

    Returns:
        (grader.sandbox.RunResult, the results' ``sandbox`` object).
    """
    from grader.sandbox import run as run_sandboxed

    argv = [sys.executable, "-m", "grader.runner.child"]
    result = run_sandboxed(argv, stdin=request, readonly=submission_paths(submission),
                           limits=sandbox_caps(limits), sandbox=sandbox, follow_up=follow_up)
    return result, {"enabled": bool(sandbox), "warning": None if sandbox else NO_SANDBOX_WARNING}


def submission_paths(submission: Submission) -> list[Path]:
    """What the child may read: exactly what the submission consists of.

    A folder is shown whole; a single file is shown alone, plus the ``model.py`` beside it that
    a bare state_dict needs. Never the file's parent folder: its other files (another student's
    submission, the grader's scratch) are none of the child's business, and the sandbox refuses
    a top-level folder such as /tmp outright.
    """
    if submission.folder is not None:  # a folder, or where an archive was unpacked
        return [submission.folder, *submission.code_files]
    return [submission.weights, *submission.code_files]


def sandbox_caps(limits: Limits):
    """The sandbox's caps for a child run under ``limits`` (the rubric's ``[limits]``).

    The CPU-time cap follows the wall clock: a child may keep every core it can run on busy for
    the whole wall-clock budget, so a rubric that allows a slow network more time also allows the
    CPU seconds to use it, and the wall clock stays the limit that ends an overlong run.
    """
    from grader.sandbox import SandboxCaps

    cores = max(1, len(os.sched_getaffinity(0)))  # the child inherits this process's CPU set
    cpu_seconds = max(SandboxCaps.cpu_seconds, math.ceil(limits.wall_seconds * cores))
    return SandboxCaps(wall_seconds=float(limits.wall_seconds), cpu_seconds=cpu_seconds,
                       memory_bytes=int(limits.memory_mb) * MiB)


def read_reply(result, submission: Submission, frame: bytes, *, answered: bool = False) -> tuple[dict, np.ndarray]:
    """The child's (info, logits) from its first reply ``frame`` (the first message of the run
    result's stdout); GraderError for every way it can go wrong. ``answered``: the conversation
    already checked that reply whole, so a wall clock that struck later, during a follow-up the
    grader chose to ask, leaves it standing."""
    name = submission.weights.name
    if result.timed_out and not answered:
        work = read_import_time_work(submission.entry[0]) if submission.entry else []
        if work:
            raise GraderError(say("run.too_slow_import", file=name, reason=result.reason,
                                  code=submission.entry[0].name, statements=import_time_statements(work)))
        raise GraderError(say("run.too_slow", file=name, reason=result.reason))
    try:
        header, logits = decode(frame)
    except ProtocolError as exc:
        tail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        why = result.reason or say("run.no_reply", reason=exc.args[0])
        if tail:
            raise GraderError(say("run.child_failed_output", file=name, reason=why, output=" | ".join(tail))) from None
        raise GraderError(say("run.child_failed", file=name, reason=why)) from None
    if "error" in header:
        detail = Message.from_json(header.get("detail"), untrusted=True)  # said again here, from the catalogue
        raise GraderError(detail) if detail is not None else \
            GraderError(str(header["error"])[:2000], str(header.get("hint", ""))[:2000])
    if logits is None:
        raise GraderError(f"{name}: the child returned no logits", "this is a grader bug; please report it")
    problem = reply_problem(header)
    if problem:
        raise GraderError(say("run.malformed_reply", file=name, reason=problem))
    return {**header, "notes": list(read_notes(header["notes"], header.get("notes_detail"), untrusted=True))}, logits


# What the reply's facts must be: (key, accepted types, must be a finite number >= 0 when a number).
REPLY_FIELDS = (("parameters", (int, type(None))), ("macs_per_image", (int, type(None))),
                ("latency_ms_per_image", (int, float, type(None))), ("layers", (list,)), ("form", (str,)),
                ("input", (dict, type(None))), ("notes", (list,)), ("timings", (dict,)),
                ("precision", (dict,)), ("device", (str,)))


def reply_problem(header: dict) -> Message | None:
    """What is wrong with a reply header's facts, or None: a missing or mistyped field, a negative
    count, blocks beyond their bounds, or a NaN or infinity anywhere (results.json cannot hold one)."""
    for key, types in REPLY_FIELDS:
        value = header.get(key)
        if not isinstance(value, types) or isinstance(value, bool):
            return say("reply.field_type", key=key, kind=type(value).__name__)
        if isinstance(value, (int, float)) and value < 0:
            return say("reply.negative", key=key)
    if any(not isinstance(note, str) for note in header["notes"]):
        return say("reply.notes_type")
    if any(not isinstance(layer, dict) for layer in header["layers"]):
        return say("reply.layers_type")
    problem = _blocks_problem(header.get("blocks", {}))
    if problem:
        return problem
    facts = {k: v for k, v in header.items() if k != "history"}  # a diverged run's log is read on its own
    return say("reply.not_finite") if not _finite(facts) else None


def _blocks_problem(blocks) -> Message | None:
    """What is wrong with a reply's ``blocks`` (module name -> class name; optional), or None."""
    if not isinstance(blocks, dict):
        return say("reply.field_type", key="blocks", kind=type(blocks).__name__)
    if len(blocks) > MAX_BLOCKS:
        return say("reply.too_many_blocks", cap=MAX_BLOCKS)
    if any(not isinstance(kind, str) or len(kind) > BLOCK_NAME_CHARS for kind in blocks.values()):
        return say("reply.block_name", chars=BLOCK_NAME_CHARS)
    return None


def _finite(value, depth: int = 0) -> bool:
    if depth > 32:  # deeper than any reply grader writes
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v, depth + 1) for v in value)
    return True


def check_logits(logits: np.ndarray, *, n: int, classes: int) -> None:
    """Raise GraderError unless ``logits`` is a finite float (n, classes) array.

    The messages speak per image and in proportions: ``n`` counts the memorisation probe's
    copies too, which a student's error message should not reveal.
    """
    if logits.ndim != 2:
        raise GraderError(say("logits.dims", ndim=logits.ndim, classes=classes))
    if logits.shape[1] != classes:
        raise GraderError(say("logits.classes", found=logits.shape[1], classes=classes))
    if logits.shape[0] != n:
        raise GraderError(say("logits.rows", classes=classes))
    if not np.issubdtype(logits.dtype, np.floating):
        raise GraderError(say("logits.dtype", dtype=str(logits.dtype)))
    nan, inf = np.isnan(logits), np.isinf(logits)
    if nan.any() or inf.any():
        what = say("logits.nan_inf" if nan.any() and inf.any() else "logits.nan" if nan.any() else "logits.inf")
        share = float((nan | inf).any(axis=1).mean())
        raise GraderError(say("logits.not_finite", what=what, share=f"{share:.0%}"))
