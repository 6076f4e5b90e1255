"""The wire format between the grading process and the child: one frame each way.

    frame = MAGIC | u32 little-endian header length | UTF-8 JSON header | optional .npy bytes

Arrays travel as .npy and are read with ``allow_pickle=False``, so a hostile child can at worst
send wrong numbers, never objects.
"""

from __future__ import annotations

import io
import json
import struct

import numpy as np

MAGIC = b"GRDR1\n"
MAX_HEADER_BYTES = 16 << 20
# Images per forward pass in the child, when a request names no batch_size. 100 keeps the
# homework net's activations in cache: on the 2-core EPYC, float32 ran 2x and bf16 1.2x slower
# at 500 (measured).
BATCH_SIZE = 100


class ProtocolError(ValueError):
    """A frame that is not what the protocol says."""


def encode(header: dict, array: np.ndarray | None = None) -> bytes:
    """One frame holding ``header`` (JSON-serialisable) and optionally ``array``."""
    body = json.dumps(header, allow_nan=False).encode("utf-8")
    out = io.BytesIO()
    out.write(MAGIC + struct.pack("<I", len(body)) + body)
    if array is not None:
        np.save(out, np.ascontiguousarray(array), allow_pickle=False)
    return out.getvalue()


def decode(frame: bytes) -> tuple[dict, np.ndarray | None]:
    """Inverse of ``encode``. Raises ProtocolError for anything malformed."""
    if not frame.startswith(MAGIC):
        raise ProtocolError("the frame does not start with the protocol's magic bytes")
    start = len(MAGIC) + 4
    if len(frame) < start:
        raise ProtocolError("the frame is truncated")
    (length,) = struct.unpack("<I", frame[len(MAGIC):start])
    if length > MAX_HEADER_BYTES or len(frame) < start + length:
        raise ProtocolError("the frame's header is truncated or too large")
    try:
        header = json.loads(frame[start:start + length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"the frame's header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ProtocolError("the frame's header is not a JSON object")
    rest = frame[start + length:]
    if not rest:
        return header, None
    try:
        array = np.load(io.BytesIO(rest), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ProtocolError(f"the frame's array cannot be read ({exc})") from None
    return header, array
