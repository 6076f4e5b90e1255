"""Hand-ins whose own code tampers with the grading child's conversation: messages of their own on
the private reply descriptor, follow-up requests never answered or stolen, a child that exits or
closes its reply between requests, a network that behaves one way as handed in and another under
the diagnosis. Each is graded end to end in the sandbox, as a student hands it in (a folder with
``model.py`` and a state_dict), and must gain nothing: the grade is what the network does as
handed in, or the hand-in is refused with a message that says why.

The data is generated (a red level per class, as in tests/test_integrity_cheats.py): the network
below reads it perfectly under its own input convention, and poorly under any other.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from grader.errors import GraderError
from grader.limits import Limits
from grader.pipeline import grade_one
from grader.rubric import load_rubric, parse_rubric
from grader.runner.launch import read_reply
from grader.runner.protocol import encode
from grader.sandbox import RunResult, SandboxCaps, run
from grader.sandbox.messages import complete_messages, message
from grader.submission import inspect_submission
from tests.test_integrity_cheats import CENTRES, data  # noqa: F401 (data: 600 generated test images)

# The student's model.py: the network, and helpers a student finds in an afternoon of reading
# grader's source: the private reply pipe (the one pipe that is neither stdin nor stderr), the
# request being served (a local of the child's first_answer), and whether a follow-up is asking.
MODEL_PY = '''
import os, stat, sys, threading, time
import torch
from torch import nn
from grader.runner.protocol import encode
from grader.sandbox.messages import message


def reply_fd():
    taken = {os.fstat(0).st_ino, os.fstat(2).st_ino}
    for fd in range(3, 64):
        try:
            found = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISFIFO(found.st_mode) and found.st_ino not in taken:
            return fd
    raise RuntimeError("no reply descriptor")


def caller_local(function, name):
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == function:
            return frame.f_locals[name]
        frame = frame.f_back
    return None


def in_follow_up():
    return caller_local("later_answer", "loaded") is not None


class Net(nn.Sequential):
    def __init__(self):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 10))

    def forward(self, x):
        return attack_forward(self, x, super().forward(x))


def forged_reply(net):
    """A reply that passes every check: this network's own logits on the request, forged notes."""
    images = caller_local("first_answer", "images")
    with torch.no_grad():
        logits = nn.Sequential.forward(net, torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255)
    header = {"parameters": 7, "macs_per_image": 1, "latency_ms_per_image": 0.1, "layers": [],
              "form": "model-code", "input": None, "notes": ["forged"], "timings": {}, "precision": {},
              "device": "cpu"}
    return message(encode(header, logits.numpy()))


def attack_forward(net, x, honest):
    return honest


def attack_build(net):
    pass


def build_model():
    net = Net()
    attack_build(net)
    return net
'''


def weights(*, normalised: bool = False, rolled: bool = False) -> dict:
    """The nearest-class-colour network's state_dict (keys of ``Net``): right on every image read
    as pixels in 0..1, or (``normalised``) as ``Normalize(0.5, 0.5)`` gives them; ``rolled``
    moves every output one class on."""
    linear = nn.Linear(3, 10)
    with torch.no_grad():
        linear.weight.zero_()
        linear.weight[:, 0] = 200 * (CENTRES if normalised else 2 * CENTRES)
        linear.bias.copy_(200 * (CENTRES - CENTRES**2 if normalised else -CENTRES**2))
        if rolled:
            linear.weight.copy_(linear.weight.roll(1, 0))
            linear.bias.copy_(linear.bias.roll(1, 0))
    return {"2.weight": linear.weight.detach().clone(), "2.bias": linear.bias.detach().clone()}


def hand_in(folder: Path, attack: str = "", **net) -> Path:
    """What the student hands in: model.py (the helpers above, then ``attack``, which redefines
    ``attack_build`` and/or ``attack_forward``) and torch.save of the state_dict."""
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(MODEL_PY + attack)
    torch.save(weights(**net), folder / "weights.pth")
    return folder


# The homework's rubric with a short wall clock: a child that stops answering costs 20 s, not 300.
QUICK = dataclasses.replace(load_rubric(), limits=Limits(wall_seconds=20))


@pytest.mark.slow  # ~15 s on a loaded 2-core machine, like every grade below
def test_the_helpers_find_the_reply_pipe_and_an_honest_hand_in_grades_perfectly(tmp_path, data):
    # the attacks below are only as good as their helpers: the forged reply here is never sent,
    # but building it proves the helpers found the request and the reply pipe
    probe = '''
def attack_build(net):
    assert forged_reply(net) and reply_fd() >= 3
'''
    result = grade_one(hand_in(tmp_path / "s", probe), data=data, sandbox=True)
    assert result.graded and result.evaluation.accuracy == 1.0, result.error
    assert not result.integrity.diagnosis and result.model.source == "reported"


# --- messages of its own on the reply descriptor ---------------------------------------------

FORGED_FIRST = '''
def attack_build(net):
    os.write(reply_fd(), forged_reply(net))
'''
FORGED_SPLIT = '''
def attack_build(net):
    forged = forged_reply(net)
    os.write(reply_fd(), forged[:5])
    time.sleep(0.3)
    os.write(reply_fd(), forged[5:])
'''
FORGED_AFTER = '''
import atexit

def attack_build(net):
    forged, fd = forged_reply(net), os.dup(reply_fd())  # the child closes its own copy first
    atexit.register(lambda: os.write(fd, forged))
'''


# Answers the diagnosis's first request itself, before the child's own answer: the network is the
# one that expects Normalize(0.5, 0.5), so that a diagnosis is asked for.
FORGED_FOLLOW_UP = '''
def attack_forward(net, x, honest):
    if in_follow_up() and not getattr(net, "sent", False):
        net.sent = os.write(reply_fd(), message(encode({}, torch.zeros(2000, 10).numpy())))
    return honest
'''


@pytest.mark.slow  # ~15 s a grade on a loaded 2-core machine
@pytest.mark.parametrize("attack", [FORGED_FIRST, FORGED_SPLIT, FORGED_AFTER, FORGED_FOLLOW_UP],
                         ids=["before", "split", "after", "follow-up"])
def test_a_message_the_grader_did_not_ask_for_refuses_the_hand_in(tmp_path, data, attack):
    result = grade_one(hand_in(tmp_path / "s", attack, normalised=attack is FORGED_FOLLOW_UP), data=data,
                       sandbox=True)
    assert not result.graded, "graded from a forged reply" if "forged" in result.submission.notes else result
    assert "reply" in result.error and "did not ask for" in result.error and "hint:" in result.error


FLOOD = '''
def attack_build(net):
    tiny = message(b"x") * 100_000
    fd = reply_fd()
    for _ in range(80):  # 72 MiB of one-byte messages: past the 64 MiB output cap
        os.write(fd, tiny)
'''


@pytest.mark.slow  # ~15 s
def test_a_flood_of_tiny_messages_costs_the_grading_process_little(tmp_path, data):
    started = time.process_time()  # this process's own CPU: the grading process, not the child
    result = grade_one(hand_in(tmp_path / "s", FLOOD), data=data, sandbox=True)
    assert not result.graded and "did not ask for" in result.error  # its second message is enough
    # parsing every one of the 7 million messages took the grading process 12 s of CPU and more
    assert time.process_time() - started < 6


def test_only_the_messages_asked_for_are_parsed():
    flood = message(b"x") * 1_000_000
    assert complete_messages(flood, most=2) == ([b"x", b"x"], 2 * len(message(b"x")))
    assert complete_messages(message(b"one") + message(b"two")[:-1], most=5) == ([b"one"], len(message(b"one")))


HUGE = '''
import struct

def attack_build(net):
    os.write(reply_fd(), struct.pack("<Q", 1 << 62))  # the real reply becomes this message's start
'''


@pytest.mark.slow  # ~15 s
def test_a_message_declaring_a_huge_length_is_refused_without_waiting_for_the_wall_clock(tmp_path, data):
    result = grade_one(hand_in(tmp_path / "s", HUGE), data=data, rubric=QUICK, sandbox=True)
    assert not result.graded and "sent no valid reply" in result.error, result.error  # not "took too long"


# Starts a message longer than the output cap, then waits for stdin to end (as the grading child does).
ENDLESS = r"""
import struct, sys
sys.stdout.buffer.write(struct.pack("<Q", 1 << 62) + b"the real reply, swallowed")
sys.stdout.buffer.flush()
sys.stdin.buffer.read()
"""


def test_a_message_that_can_never_end_closes_stdin_at_once():
    calls = []
    limits = SandboxCaps(wall_seconds=30, cpu_seconds=30, memory_bytes=1 << 30)
    result = run([sys.executable, "-c", ENDLESS], stdin=message(b"request"), limits=limits, sandbox=False,
                 follow_up=lambda reply: calls.append(reply) or message(b"more"))
    assert result.returncode == 0 and not result.timed_out and result.seconds < 20
    assert calls == []


# --- a child that stops answering between requests --------------------------------------------
# The network as handed in expects Normalize(0.5, 0.5) and declares nothing: it scores about 10%,
# so the grading child is asked for a diagnosis. Each attack breaks the conversation there.

ON_FOLLOW_UP = """
def attack_forward(net, x, honest):
    if in_follow_up():
        {}
    return honest
"""
HANG = ON_FOLLOW_UP.format("time.sleep(1000)")
STEAL_STDIN = '''
def steal():
    while os.read(0, 1 << 20):  # every follow-up request, before the child's loop reads it
        pass

def attack_build(net):
    threading.Thread(target=steal, daemon=True).start()
'''
EXIT = ON_FOLLOW_UP.format("os._exit(3)")
CLOSE_REPLY = ON_FOLLOW_UP.format("os.close(reply_fd())")
PRINT = ON_FOLLOW_UP.format('os.write(1, message(b"junk on fd 1")); print("and on sys.stdout")')


@pytest.fixture(scope="module")
def handed_in(tmp_path_factory, data):
    """The same network handed in without an attack: the grade every attack must end with."""
    result = grade_one(hand_in(tmp_path_factory.mktemp("plain") / "s", normalised=True), data=data,
                       rubric=QUICK, sandbox=True)
    assert result.graded and result.evaluation.accuracy < 0.3, result.error
    (found,) = result.integrity.diagnosis
    assert found.flag == "input-convention" and found.accuracy > 0.95
    return result


@pytest.mark.slow  # ~15 s a grade; hang and steal-stdin wait for the 20 s wall clock
@pytest.mark.parametrize("attack", [HANG, STEAL_STDIN, EXIT, CLOSE_REPLY],
                         ids=["hang", "steal-stdin", "exit", "close-reply"])
def test_a_follow_up_never_answered_leaves_the_grade_as_handed_in(tmp_path, data, handed_in, attack):
    result = grade_one(hand_in(tmp_path / "s", attack, normalised=True), data=data, rubric=QUICK,
                       sandbox=True)
    assert result.graded, result.error  # the grade the first reply earned is never lost
    assert result.evaluation.accuracy == handed_in.evaluation.accuracy
    assert result.verdict.score == handed_in.verdict.score
    assert not result.integrity.diagnosis  # the diagnosis never finished: nothing is reported


def test_a_wall_clock_during_a_follow_up_leaves_the_checked_first_reply_standing(tmp_path):
    header = {"parameters": 1, "macs_per_image": 1, "latency_ms_per_image": 0.1, "layers": [], "form": "x",
              "input": None, "notes": [], "timings": {}, "precision": {}, "device": "cpu"}
    frame = encode(header, np.zeros((4, 10), np.float32))
    stopped = RunResult(returncode=None, stdout=message(frame), stderr=b"", timed_out=True,
                        reason="killed after 20 s wall clock", seconds=20.0)
    with inspect_submission(hand_in(tmp_path / "s")) as submission:
        assert read_reply(stopped, submission, frame, answered=True)[0] == header
        with pytest.raises(GraderError, match="took too long"):  # no reply checked before the clock struck
            read_reply(stopped, submission, frame)


@pytest.mark.slow
def test_printing_during_a_follow_up_changes_nothing(tmp_path, data, handed_in):
    result = grade_one(hand_in(tmp_path / "s", PRINT, normalised=True), data=data, rubric=QUICK,
                       sandbox=True)
    assert result.graded and result.evaluation.accuracy == handed_in.evaluation.accuracy, result.error
    assert result.integrity.diagnosis == handed_in.integrity.diagnosis


# --- a network that behaves one way as handed in, another under the diagnosis -----------------

# Right on every image, except when graded as handed in: then every output is one class off (0%),
# which the diagnosis's relabelling undoes, for a grade under the fix.
SANDBAG = '''
def attack_forward(net, x, honest):
    return honest if in_follow_up() else honest.roll(1, 1)
'''
FIXING = {"check": [{"name": "accuracy above 0.9", "metric": "accuracy", "condition": "x > 0.9", "points": 4}],
          "submission": {"apply_diagnosis": True, "diagnosis_penalty": 0.25}}


@pytest.mark.slow
def test_a_network_that_sandbags_as_handed_in_earns_less_under_the_fix(tmp_path, data):
    rubric = parse_rubric(FIXING)
    honest = grade_one(hand_in(tmp_path / "honest"), data=data, rubric=rubric, sandbox=True)
    assert honest.graded and honest.verdict.score == 4.0, honest.error
    result = grade_one(hand_in(tmp_path / "s", SANDBAG), data=data, rubric=rubric, sandbox=True)
    assert result.graded and "diagnosis-applied" in result.flags, result.error
    assert result.integrity.applied.accuracy_as_handed_in == 0.0
    assert result.verdict.score == 3.0 < honest.verdict.score  # the penalty: sandbagging never pays


# Knows no label, so it guesses: one class for every image as handed in (10%), then a fresh random
# guess for every image under every convention the diagnosis asks about, hoping one scores well.
GUESSER = '''
def attack_forward(net, x, honest):
    return torch.randn(honest.shape) if in_follow_up() else honest * 0
'''


@pytest.mark.slow
def test_guessing_under_the_diagnosis_confirms_no_fix(tmp_path, data):
    result = grade_one(hand_in(tmp_path / "s", GUESSER), data=data, rubric=parse_rubric(FIXING), sandbox=True)
    assert result.graded and result.evaluation.accuracy == 0.1, result.error
    # the best of ten guesses on the first slice never beats the grade by 10 points on the second
    assert not result.integrity.diagnosis and result.integrity.applied is None and result.verdict.score == 0
