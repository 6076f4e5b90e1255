"""The wire format between the grading process and the child: one frame each way.

    frame = MAGIC | u32 little-endian header length | UTF-8 JSON header | optional .npy bytes

Arrays travel as .npy and are read back from their header and bytes alone (no pickle, and the size
the header declares must be the size that came), so a hostile child can at worst send wrong
numbers, never objects, and never make this process allocate more than it sent.
"""

from __future__ import annotations

import io
import json
import math
import struct

import numpy as np

from grader.messages import say

MAGIC = b"GRDR1\n"
MAX_HEADER_BYTES = 16 << 20
# Images per forward pass in the child, when a request names no batch_size. 100 keeps the
# homework net's activations in cache: on the 2-core EPYC, float32 ran 2x and bf16 1.2x slower
# at 500 (measured).
BATCH_SIZE = 100
# The child names the network's containers (``blocks``: module name -> class name) for the
# report's layer table; class names come from student code, so they are bounded in number and
# length, and a reply beyond these bounds is refused (grader.runner.launch.reply_problem).
MAX_BLOCKS = 4096
BLOCK_NAME_CHARS = 80


class ProtocolError(ValueError):
    """A frame that is not what the protocol says; its one argument, a catalogue message, says how."""


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
        raise ProtocolError(say("protocol.magic"))
    start = len(MAGIC) + 4
    if len(frame) < start:
        raise ProtocolError(say("protocol.truncated"))
    (length,) = struct.unpack("<I", frame[len(MAGIC):start])
    if length > MAX_HEADER_BYTES or len(frame) < start + length:
        raise ProtocolError(say("protocol.header_size"))
    try:
        header = json.loads(frame[start:start + length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(say("protocol.header_json", kind=type(exc).__name__)) from None
    except RecursionError:
        raise ProtocolError(say("protocol.header_deep")) from None
    if not isinstance(header, dict):
        raise ProtocolError(say("protocol.header_object"))
    rest = frame[start + length:]
    if not rest:
        return header, None
    return header, read_array(rest)


def read_array(data: bytes) -> np.ndarray:
    """The array in ``data``, an .npy file of format 1.0 or 2.0 (what ``np.save`` writes), whose
    bytes after the header must be exactly the array's. Raises ProtocolError for anything else."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"an .npy version {version} the child never writes")
        shape, fortran, dtype = read_header(stream)
    except Exception as exc:  # numpy's header parser raises ValueError, SyntaxError, tokenize's errors...
        raise ProtocolError(say("protocol.array_unreadable", kind=type(exc).__name__)) from None
    if dtype.hasobject or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ProtocolError(say("protocol.array_objects"))
    body = data[stream.tell():]
    if math.prod(shape) * dtype.itemsize != len(body):
        raise ProtocolError(say("protocol.array_size"))
    flat = np.frombuffer(body, dtype=dtype, count=math.prod(shape) if dtype.itemsize else -1)
    return flat.reshape(shape, order="F" if fortran else "C").copy()
