"""`grader data info`: a description of the data as a dict, and as text."""

from __future__ import annotations

from grader.data.cache import cache_dir_for
from grader.data.locate import load_cifar10, resolve_source


def describe(data=None, *, expect_full: bool = True) -> dict:
    """Load (converting once) and describe the data. Returns a JSON-ready dict."""
    _, how = resolve_source(data)
    ds = load_cifar10(data, expect_full=expect_full)
    return {
        "source": ds.source,
        "found_by": how,
        "kind": ds.source_kind,
        "official": ds.official,
        "fingerprint": ds.fingerprint,
        "cache": str(cache_dir_for(ds.meta["source_sha256"])),
        "classes": list(ds.classes),
        "counts": ds.meta["counts"],
    }


def format_description(info: dict) -> str:
    """``describe``'s dict as the aligned lines `grader data info` prints."""
    lines = [
        f"source       {info['source']}  (from {info['found_by']})",
        f"format       {info['kind']}",
        f"official     {'yes: checksums match the official release' if info['official'] else 'no'}",
        f"fingerprint  {info['fingerprint']}",
        f"cache        {info['cache']}",
        "",
        f"{'class':<12}{'train':>8}{'test':>8}",
    ]
    train, test = info["counts"]["train"], info["counts"]["test"]
    for i, name in enumerate(info["classes"]):
        lines.append(f"{name:<12}{train['per_class'][i]:>8}{test['per_class'][i]:>8}")
    lines.append(f"{'total':<12}{train['total']:>8}{test['total']:>8}")
    return "\n".join(lines)
