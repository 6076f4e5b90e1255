"""Similar networks between students: detection rate of each kind of copy, false pairs among
networks trained apart, and the time to compare a class of 200.

    .venv/bin/python bench/bench_similarity.py [--train 10000] [--epochs 3] [--bases 4] [--students 200]

Networks: small convolutional nets trained briefly on the CPU on a subset of CIFAR-10's training
set (not the homework's full runs), evaluated on the whole test set.

Negatives (trained apart): recipe A (SGD) with several seeds, recipe B (the same architecture
with Adam) and recipe C (another architecture), two seeds each. Positives, made from each
recipe-A network as a student would: re-saved, keys renamed, a ``module.`` prefix, safetensors,
TorchScript, pickled whole, half precision, hidden units permuted, fine-tuned one epoch on other
images, fine-tuned heavily (five epochs, the whole subset, a higher rate), and permuted then
fine-tuned one epoch. Every checkpoint is written to a file and read back the way a grade reads
it (``Kept.take_weights``: no unpickling); logits come from the network in this process, as the
grade's child would compute them.

Scored with the default thresholds over the whole class (every network with every other, as
``grader batch`` does): a positive is detected when its pair with its base is flagged; a false
pair is a flagged pair of two networks with different origins.

Timing: 200 students (19,900 pairs) with synthetic predictions and fingerprints (five students
hand in a classmate's network), whole and again with the first run's cache; the pair statistics
against a baseline in the same run: the same statistics computed pair by pair with numpy.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np

KINDS = ("re-saved", "renamed", "prefixed", "safetensors", "torchscript", "whole", "half", "permuted",
         "fine-tuned 1 epoch", "fine-tuned heavily", "permuted + fine-tuned")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=10000, help="training images used")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--bases", type=int, default=4, help="recipe-A seeds (each the base of every positive)")
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--data", default=None)
    parser.add_argument("--nets", type=Path, default=Path(tempfile.gettempdir()) / "bench_similarity_nets.pt",
                        help="the trained class, kept here and reused by the next run (delete it to retrain)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    from grader.data import load_cifar10

    data = load_cifar10(args.data)
    started = time.perf_counter()
    images, labels = _subset(data, args.train)
    test = _tensor(data.test_images)
    nets = _load_class(args.nets) if args.nets.exists() else None
    if nets is None:
        nets = _train_class(images, labels, args.epochs, args.bases)
        torch.save([{**n, "net": n["net"].state_dict()} for n in nets], args.nets)
        print(f"trained {len(nets)} networks in {time.perf_counter() - started:.0f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        members, predictions, weights, origins, kinds = _as_graded(nets, test, Path(tmp))
    _score(members, predictions, weights, origins, kinds, data.test_labels, nets)
    _time_class(args.students, data.test_labels)


# --- data and networks ------------------------------------------------------------------------


def _tensor(images: np.ndarray):
    import torch

    return torch.tensor(images).permute(0, 3, 1, 2).float().div(255).sub(0.5)  # (n, 3, 32, 32)


def _subset(data, n: int):
    import torch

    pick = np.random.default_rng(0).permutation(len(data.train_labels))[:n]
    return _tensor(data.train_images[pick]), torch.tensor(data.train_labels[pick]).long()


def _load_class(path: Path) -> list[dict]:
    """The class ``_train_class`` trained and saved to ``path`` (this bench's own file)."""
    import torch

    nets = torch.load(path)
    for n in nets:
        net = (_net_c if n["origin"].startswith("C") else _net_a)(0)
        net.load_state_dict(n["net"])
        n["net"] = net.eval()
    print(f"loaded the {len(nets)} networks trained by an earlier run from {path}")
    return nets


def _net_a(seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 16x16
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 8x8
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 4x4
                         nn.Flatten(), nn.Linear(64 * 16, 64), nn.ReLU(), nn.Linear(64, 10))


def _net_c(seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 24, 5, padding=2), nn.BatchNorm2d(24), nn.ReLU(), nn.MaxPool2d(4),  # 8x8
                         nn.Conv2d(24, 48, 3, padding=1), nn.BatchNorm2d(48), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(48, 10))


def _fit(net, images, labels, epochs: int, *, lr: float, seed: int, adam: bool = False):
    import torch

    order = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr) if adam else \
        torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    net.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(labels), generator=order).split(100):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(images[batch]), labels[batch]).backward()
            opt.step()
    return net.eval()


def _train_class(images, labels, epochs: int, bases: int) -> list[dict]:
    """Every network of the class: ``{name, origin, kind, net, form}``."""
    nets = []
    for seed in range(bases):
        nets.append({"name": f"A{seed}", "origin": f"A{seed}", "kind": None,
                     "net": _fit(_net_a(seed), images, labels, epochs, lr=0.02, seed=seed)})
    for seed in (10, 11):
        nets.append({"name": f"B{seed}", "origin": f"B{seed}", "kind": None,
                     "net": _fit(_net_a(seed), images, labels, epochs, lr=1e-3, seed=seed, adam=True)})
        nets.append({"name": f"C{seed}", "origin": f"C{seed}", "kind": None,
                     "net": _fit(_net_c(seed), images, labels, epochs, lr=0.05, seed=seed)})
    half = len(labels) // 2
    for base in [n for n in nets if n["name"].startswith("A")]:
        for kind in KINDS:
            nets.append({"name": f"{base['name']}:{kind}", "origin": base["origin"], "kind": kind,
                         "net": _derive(base["net"], kind, images, labels, half, seed=len(nets))})
    return nets


def _derive(net, kind: str, images, labels, half: int, seed: int):
    """A student's copy of ``net``, made as ``kind`` says (the file form is chosen in ``_save``)."""
    import torch

    copied = copy.deepcopy(net)
    if kind.startswith("permuted"):
        _permute(copied, torch.Generator().manual_seed(seed))
    if kind.endswith("fine-tuned 1 epoch") or kind == "permuted + fine-tuned":
        return _fit(copied, images[half:], labels[half:], 1, lr=0.005, seed=seed)
    if kind == "fine-tuned heavily":
        return _fit(copied, images, labels, 5, lr=0.02, seed=seed)
    return copied


def _permute(net, generator) -> None:
    """Reorder the hidden units of every layer but the last, and the next layer's inputs to match."""
    import torch

    layers = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        for layer, after in zip(layers, layers[1:]):
            p = torch.randperm(layer.out_channels if hasattr(layer, "out_channels") else layer.out_features,
                               generator=generator)
            layer.weight.copy_(layer.weight[p])
            layer.bias.copy_(layer.bias[p])
            w = after.weight
            spatial = w.shape[1] // len(p)
            after.weight.copy_(w.reshape(w.shape[0], len(p), spatial, *w.shape[2:])[:, p].reshape(w.shape))


def _save(entry: dict, folder: Path) -> Path:
    """Write ``entry``'s network as its kind says; returns the file."""
    import torch
    from safetensors.torch import save_file

    net, kind, path = entry["net"], entry["kind"], folder / f"{len(list(folder.iterdir()))}.pt"
    state = net.state_dict()
    if kind == "re-saved":
        torch.save(copy.deepcopy(state), path)
    elif kind == "renamed":
        torch.save({f"layer{i}.{k.rsplit('.', 1)[-1]}": v for i, (k, v) in enumerate(state.items())}, path)
    elif kind == "prefixed":
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, path)
    elif kind == "safetensors":
        path = path.with_suffix(".safetensors")
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    elif kind == "torchscript":
        torch.jit.save(torch.jit.trace(net, torch.zeros(1, 3, 32, 32)), path)
    elif kind == "whole":
        torch.save(net, path)
    elif kind == "half":
        torch.save({k: v.half() for k, v in state.items()}, path)
    else:
        torch.save(state, path)
    return path


def _as_graded(nets: list[dict], test, folder: Path):
    """The class as ``find_pairs`` sees it after a batch: members, predictions, kept weights."""
    import torch

    from grader.similarity.kept import Kept
    from grader.similarity.rank import Member

    members, rows, weights = [], [], []
    for entry in nets:
        kept = Kept()
        kept.take_weights(_save(entry, folder))
        with torch.no_grad():
            rows.append(torch.cat([entry["net"](b) for b in test.split(1000)]).argmax(1).numpy())
        members.append(Member(entry["name"], "", entry["name"], kept.print, kept.note))
        weights.append(kept.tensors)
    return members, np.stack(rows), weights, [n["origin"] for n in nets], [n["kind"] for n in nets]


# --- scoring ------------------------------------------------------------------------------------


def _score(members, predictions, weights, origins, kinds, labels, nets) -> None:
    from grader.similarity.rank import find_pairs

    accuracy = {m.key: float(np.mean(p == labels)) for m, p in zip(members, predictions)}
    negatives = [m.key for m, k in zip(members, kinds) if k is None]
    print("accuracy of the networks trained apart: " + ", ".join(f"{k} {accuracy[k]:.1%}" for k in negatives))
    started = time.perf_counter()
    found = find_pairs(members, predictions, labels,
                       weights=lambda i: [w.astype(np.float32) for w in weights[i]] if weights[i] else None)
    print(f"{len(members)} networks, {len(members) * (len(members) - 1) // 2} pairs: {found.candidates} candidates, "
          f"{len(found.pairs)} flagged in {time.perf_counter() - started:.1f} s "
          f"(kappa on errors: median {found.median:.2f}, spread {found.spread:.3f})")
    origin = dict(zip([m.key for m in members], origins))
    flagged = {frozenset((p.a.key, p.b.key)): p for p in found.pairs}
    print(f"\n{'positive kind':24} {'detected':>9}  flagged as (score, z)")
    for kind in KINDS:
        pairs = [(n["name"].split(":")[0], n["name"]) for n in nets if n["kind"] == kind]
        hits = [flagged.get(frozenset(p)) for p in pairs]
        shown = ", ".join(f"{h.kind} ({h.score:.2f}, {h.evidence.z or 0:.1f})" if h else "missed" for h in hits)
        print(f"{kind:24} {sum(map(bool, hits)):>4}/{len(pairs):<4}  {shown}")
    false = [p for p in found.pairs if origin[p.a.key] != origin[p.b.key]]
    apart = sum(1 for i in range(len(members)) for j in range(i + 1, len(members)) if origins[i] != origins[j])
    print(f"\nfalse pairs (different origins): {len(false)} of {apart}")
    for p in false:
        print(f"  {p.a.key} ~ {p.b.key}: {p.kind} {p.score:.2f}")
    _print_negative_margins(members, predictions, labels, origins, found)


def _print_negative_margins(members, predictions, labels, origins, found) -> None:
    """How close the networks trained apart came to each threshold."""
    from grader.similarity.behaviour import pair_statistics
    from grader.similarity.matching import match_weights  # noqa: F401 - the same code find_pairs runs

    stats = pair_statistics(predictions, labels)
    apart = [(i, j) for i in range(len(members)) for j in range(i + 1, len(members))
             if origins[i] != origins[j]]
    kappas = [stats.kappa[i, j] for i, j in apart]
    z = [(k - found.median) / found.spread for k in kappas]
    sketches = [float(np.dot(members[i].weights.sketch, members[j].weights.sketch)) for i, j in apart
                if members[i].weights and members[j].weights and members[i].weights.sketch
                and members[i].weights.architecture == members[j].weights.architecture]
    print(f"networks trained apart: kappa max {max(kappas):.2f}, z max {max(z):.1f}; "
          f"sketched cosine as saved max {max(sketches, default=float('nan')):.2f}")


# --- timing -------------------------------------------------------------------------------------


def _time_class(students: int, labels: np.ndarray) -> None:
    """find_pairs over ``students`` with synthetic logits and fingerprints, against a pair-by-pair baseline."""
    from grader.similarity.behaviour import error_kappa, pair_statistics
    from grader.similarity.fingerprint import fingerprint
    from grader.similarity.rank import Member, find_pairs

    rng = np.random.default_rng(0)
    n = len(labels)
    right = rng.random((students, n)) < rng.uniform(0.6, 0.9, (students, 1))
    predictions = np.where(right, labels, rng.integers(0, 10, (students, n))).astype(np.int16)
    prints = [fingerprint([rng.normal(size=(64, 32, 3, 3)).astype(np.float32), rng.normal(size=64).astype(np.float32),
                           rng.normal(size=(10, 1024)).astype(np.float32)]) for _ in range(students)]
    for k in range(0, 10, 2):  # five students hand in a classmate's network
        predictions[k + 1], prints[k + 1] = predictions[k], prints[k]
    members = [Member(f"s{i:03d}", "", f"{i:064x}", prints[i]) for i in range(students)]
    started = time.perf_counter()
    found = find_pairs(members, predictions, labels)
    whole = time.perf_counter() - started
    started = time.perf_counter()
    find_pairs(members, predictions, labels, cache=found.cache)
    again = time.perf_counter() - started
    started = time.perf_counter()
    pair_statistics(predictions, labels)
    vectorised = time.perf_counter() - started
    sample = 500
    started = time.perf_counter()
    wrong = predictions != labels
    for k in range(sample):
        i, j = divmod(k, students)
        error_kappa(wrong[i], wrong[(i + j + 1) % students])
        np.mean(predictions[i] == predictions[(i + j + 1) % students])
    looped = (time.perf_counter() - started) / sample * students * (students - 1) / 2
    pairs = students * (students - 1) // 2
    print(f"\n{students} students, {pairs} pairs, {n} test images: find_pairs {whole:.2f} s "
          f"({found.candidates} candidates, {len(found.pairs)} flagged), again with its cache {again:.2f} s; "
          f"pair statistics {vectorised:.2f} s vectorised vs {looped:.1f} s pair by pair "
          f"(estimated from {sample}): {looped / vectorised:.0f}x")


if __name__ == "__main__":
    main()
