"""Messages over a child's standard input and output, so that one child can answer several
requests in turn (a conversation) and each side knows where a message ends.

    message = u64 little-endian length | that many bytes

    message(payload) -> bytes                       what to write
    read_message(stream, limit) -> bytes | None     the child's side: the next one, None at the end
    complete_messages(buffer, start, most) -> ([payload], next start)   the parent's side, as bytes arrive
"""

from __future__ import annotations

import struct
from typing import BinaryIO

LENGTH = struct.Struct("<Q")


class MessageError(ValueError):
    """A message that is cut short or longer than allowed."""


def message(payload: bytes) -> bytes:
    """``payload`` with its length in front."""
    return LENGTH.pack(len(payload)) + payload


def read_message(stream: BinaryIO, limit: int) -> bytes | None:
    """The next message's payload from ``stream``; None when the stream ends between messages.

    Raises:
        MessageError: the stream ends inside a message, or one declares more than ``limit`` bytes.
    """
    head = _read_exactly(stream, LENGTH.size)
    if not head:
        return None
    (length,) = LENGTH.unpack(head)
    if length > limit:
        raise MessageError(f"a message of {length} bytes, over the {limit} allowed")
    body = _read_exactly(stream, length)
    if len(body) != length:
        raise MessageError("the stream ended inside a message")
    return body


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            if got:  # a length prefix cut short is a message cut short
                raise MessageError("the stream ended inside a message")
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def complete_messages(buffer: bytes | bytearray, start: int = 0,
                      most: int | None = None) -> tuple[list[bytes], int]:
    """The messages that ``buffer[start:]`` holds whole (the first ``most`` of them, when given),
    and where the next one begins. ``most`` bounds the work: a child's 64 MiB of one-byte
    messages is 7 million of them, minutes of parsing."""
    found = []
    while len(buffer) - start >= LENGTH.size and (most is None or len(found) < most):
        (length,) = LENGTH.unpack_from(buffer, start)
        end = start + LENGTH.size + length
        if end > len(buffer):
            break
        found.append(bytes(buffer[start + LENGTH.size:end]))
        start = end
    return found, start
