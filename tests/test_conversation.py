"""A child that answers several requests in turn: the sandbox's conversation, the runner's
follow-up requests on a loaded network, and the diagnosis they carry."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import torch
from torch import nn

from grader.limits import Limits
from grader.runner.launch import FollowUp, run_submission
from grader.sandbox import SandboxCaps, run
from grader.sandbox.messages import MessageError, complete_messages, message, read_message
from grader.submission import inspect_submission

QUICK = SandboxCaps(wall_seconds=30, cpu_seconds=30, memory_bytes=1 << 30)

# The other side of the framing, written from its description (8-byte little-endian length, then
# the bytes): each request comes back reversed, until stdin ends.
ECHO = r"""
import struct, sys
while True:
    head = sys.stdin.buffer.read(8)
    if not head:
        break
    (n,) = struct.unpack("<Q", head)
    body = sys.stdin.buffer.read(n)
    sys.stdout.buffer.write(struct.pack("<Q", n) + body[::-1])
    sys.stdout.buffer.flush()
print("stdin ended", file=sys.stderr)
"""


def test_messages_round_trip_and_refuse_what_is_cut_short():
    stream = message(b"one") + message(b"") + message(b"three")
    assert complete_messages(stream) == ([b"one", b"", b"three"], len(stream))
    assert complete_messages(stream[:-1]) == ([b"one", b""], len(message(b"one") + message(b"")))
    reader = io.BytesIO(stream)
    assert [read_message(reader, 10) for _ in range(4)] == [b"one", b"", b"three", None]
    with pytest.raises(MessageError, match="inside"):
        read_message(io.BytesIO(stream[:5]), 10)
    with pytest.raises(MessageError, match="over"):
        read_message(io.BytesIO(message(b"x" * 11)), 10)


@pytest.mark.parametrize("sandbox", [True, False])
def test_a_conversation_goes_on_until_the_parent_says_enough(sandbox):
    heard = []

    def follow_up(reply: bytes) -> bytes | None:
        heard.append(reply)
        return message(b"again %d" % len(heard)) if len(heard) < 3 else None

    result = run([sys.executable, "-c", ECHO], stdin=message(b"first"), follow_up=follow_up, limits=QUICK,
                 sandbox=sandbox)
    assert result.ok, result
    assert heard == [b"tsrif", b"1 niaga", b"2 niaga"]
    assert complete_messages(result.stdout)[0] == heard
    assert b"stdin ended" in result.stderr  # stdin closed after the last answer: the child finished


def test_the_wall_clock_holds_for_the_whole_conversation():
    def follow_up(reply: bytes) -> bytes:
        return message(b"more")  # never enough

    slow = ECHO.replace("sys.stdout.buffer.flush()", "sys.stdout.buffer.flush(); __import__('time').sleep(0.2)")
    limits = SandboxCaps(wall_seconds=1, cpu_seconds=30, memory_bytes=1 << 30)
    result = run([sys.executable, "-c", slow], stdin=message(b"x"), follow_up=follow_up, limits=limits)
    assert result.timed_out and len(complete_messages(result.stdout)[0]) >= 3


def test_a_child_that_never_writes_a_whole_message_is_not_answered():
    calls = []
    result = run([sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'\\x09' * 12)"],
                 stdin=message(b"x"), follow_up=lambda reply: calls.append(reply), limits=QUICK)
    assert result.returncode == 0 and calls == []


def _hand_in(folder, net: nn.Module):
    folder.mkdir()
    torch.save(net, folder / "model.pth")
    return folder


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 10))


def test_follow_ups_run_on_the_loaded_network_and_a_failed_one_ends_the_talk(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    both = np.concatenate([images, images[..., ::-1]])  # as sent, and with the channels reversed
    plain = {"scale": 1.0, "mean": None, "std": None}
    bgr = {**plain, "channels": "bgr"}
    broken = {"scale": 1.0, "mean": [0.5, 0.5, 0.5], "std": [0.0, 0.0, 0.0]}  # every input divided by 0
    steps = [FollowUp(both, [plain, bgr]), FollowUp(images[:5], [broken]), FollowUp(images, [plain])]
    with inspect_submission(_hand_in(tmp_path / "s", _net())) as submission:
        talk = run_submission(submission, images, classes=10, limits=Limits(), sandbox=False,
                              plan=lambda reply: steps[len(reply.more)])
    assert len(talk.more) == 1  # the broken table's reply (NaN) ended the conversation
    as_sent, reversed_, bgr_as_sent, _ = np.split(talk.more[0], 4)
    np.testing.assert_allclose(as_sent, talk.logits, rtol=1e-5, atol=1e-5)  # same network, same input
    np.testing.assert_allclose(bgr_as_sent, reversed_, rtol=1e-5, atol=1e-5)
    assert np.isfinite(talk.logits).all() and talk.info["form"]  # the grade's own reply stands
