"""The report's layer table, condensed: one row per stage or block, repeated blocks as one row.

    condense(layers, blocks) -> [LayerRow]       pure; results.json keeps every layer

A network's leaves come in call order (grader.runner.describe). Leaves inside a numbered
container (``layer1.0.conv1``, ``features.2.1``) form one block; runs of identical sibling blocks
(``layer1.0``, ``layer1.1``, ``layer1.2``) become one row. A block is named by its own class
(``layer1.0–2: 3 × BasicBlock``) when ``blocks`` knows it and it is not a generic container;
otherwise by its leaf types (``layer1.0–2: 3 × [Conv2d → BatchNorm2d → ...]``). Other leaves
are grouped into stages: a convolution or linear layer starts a row, and the layers without
weights or with few (activations, pooling, norms, dropout) join the row before them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

# A leaf whose type holds one of these starts a new stage row.
STAGE_STARTS = ("Conv", "Linear")
# Leaves that pass their input through (an empty shortcut): counted, not named in a row's types.
PASS_THROUGH = ("Sequential", "ModuleList", "ModuleDict", "Identity")
# Containers whose class says nothing of what they hold: their blocks are named by leaf types.
GENERIC_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
# A block's class name as shown, at most (it comes from student code).
CLASS_NAME_CHARS = 80


@dataclass(frozen=True)
class LayerRow:
    """One row of the condensed table.

    Attributes:
        names: the layers it covers (``layer1.0–2``, ``0–2``, ``fc``).
        types: the block's class (``BasicBlock``, repeats as ``3 × BasicBlock``), or the leaf
            types in order (repeats of a block as ``3 × [...]``).
        output_shape: the last known output shape per image, or None.
        parameters: the parameters of every layer it covers.
        layers: how many leaves it covers.
    """

    names: str
    types: str
    output_shape: tuple[int, ...] | None
    parameters: int
    layers: int


@dataclass(frozen=True)
class _Unit:
    key: str  # the block's name, or "" for a stage of loose leaves
    leaves: tuple[Mapping[str, Any], ...]
    kind: str | None  # the block's class, where known and not a generic container

    @property
    def signature(self) -> tuple:
        return (self.kind, tuple(str(leaf.get("type", "")) for leaf in self.leaves),
                tuple(int(leaf.get("parameters") or 0) for leaf in self.leaves))


def condense(layers: Sequence[Mapping[str, Any]], blocks: Mapping[str, Any] | None = None) -> list[LayerRow]:
    """The rows of the condensed table.

    Args:
        layers: ``{name, type, output_shape, parameters}`` per leaf, in call order.
        blocks: module name -> class name of the containers (results' ``model.blocks``); empty
            or None where unknown.
    """
    rows, units = [], _units(layers, blocks)
    i = 0
    while i < len(units):
        run = 1
        while i + run < len(units) and _repeats(units[i + run - 1], units[i + run]):
            run += 1
        rows.append(_row(units[i:i + run]))
        i += run
    return rows


def block_class(blocks: Mapping[str, Any] | None, key: str) -> str | None:
    """The class that names block ``key``: None where it is unknown, not text, or a generic
    container; otherwise on one line, cut to CLASS_NAME_CHARS (it is the student's text)."""
    kind = (blocks or {}).get(key) if key else None
    if not isinstance(kind, str):
        return None
    kind = " ".join(kind.split())
    if not kind or kind in GENERIC_CONTAINERS:
        return None
    return kind if len(kind) <= CLASS_NAME_CHARS else kind[:CLASS_NAME_CHARS - 1] + "…"


def _block_of(name: str) -> str:
    """The numbered container a leaf sits in (``layer1.0`` for ``layer1.0.bn1``), or ""."""
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part.isdigit():
            return ".".join(parts[:i + 1])
    return ""


def _units(layers: Sequence[Mapping[str, Any]], blocks: Mapping[str, Any] | None) -> list[_Unit]:
    units: list[_Unit] = []
    for leaf in layers:
        key = _block_of(str(leaf.get("name", "")))
        last = units[-1] if units else None
        starts_stage = any(s in str(leaf.get("type", "")) for s in STAGE_STARTS)
        if last is not None and last.key == key and (key or not starts_stage):
            units[-1] = _Unit(key, last.leaves + (leaf,), last.kind)
        else:
            units.append(_Unit(key, (leaf,), block_class(blocks, key)))
    return units


def _split(key: str) -> tuple[str, int | None]:
    parent, _, index = key.rpartition(".")
    return parent, int(index) if index.isdigit() else None


def _repeats(a: _Unit, b: _Unit) -> bool:
    """``b`` is the sibling block right after ``a``, with the same layers and weights."""
    if not a.key or not b.key:
        return False
    (pa, ia), (pb, ib) = _split(a.key), _split(b.key)
    return pa == pb and ia is not None and ib == ia + 1 and a.signature == b.signature


def _row(run: Sequence[_Unit]) -> LayerRow:
    first, last = run[0], run[-1]
    if first.key:
        parent, start = _split(first.key)
        names = first.key if len(run) == 1 else f"{parent + '.' if parent else ''}{start}–{_split(last.key)[1]}"
    else:
        leaf_names = [str(leaf.get("name", "")) for leaf in first.leaves]
        names = leaf_names[0] if len(leaf_names) == 1 else f"{leaf_names[0]}–{leaf_names[-1]}"
    if first.kind:
        types = first.kind if len(run) == 1 else f"{len(run)} × {first.kind}"
    else:
        chain = _chain([str(leaf.get("type", "")) for leaf in first.leaves
                        if leaf.get("type") not in PASS_THROUGH or len(first.leaves) == 1])
        types = chain if len(run) == 1 else f"{len(run)} × [{chain}]"
    leaves = [leaf for unit in run for leaf in unit.leaves]
    shapes = [leaf.get("output_shape") for leaf in leaves if leaf.get("output_shape")]
    return LayerRow(names, types, tuple(shapes[-1]) if shapes else None,
                    sum(int(leaf.get("parameters") or 0) for leaf in leaves), len(leaves))


def _chain(types: Sequence[str]) -> str:
    """``Conv2d → ReLU → MaxPool2d``; a type repeated in a row as ``ReLU ×2``."""
    runs: list[list] = []
    for kind in types:
        if runs and runs[-1][0] == kind:
            runs[-1][1] += 1
        else:
            runs.append([kind, 1])
    return " → ".join(kind if n == 1 else f"{kind} ×{n}" for kind, n in runs)
