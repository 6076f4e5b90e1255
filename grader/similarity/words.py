"""A flagged pair's evidence in words, for similarity.csv and the class report (pure).

    evidence_text(pair, t, median) -> str                     one sentence, in the table ``t``'s language
    report_section(found, students, lang) -> dict     the class report's "Similar pairs" context
"""

from __future__ import annotations

from grader.report.i18n import similarity_strings
from grader.similarity.rank import Found, Pair


def evidence_text(pair: Pair, t: dict[str, str], median: float | None = None) -> str:
    """The evidence behind ``pair``, strongest first, joined by semicolons (``median``: the
    class's median kappa on errors, which the pair's z is measured from)."""
    e, parts = pair.evidence, []
    if pair.kind == "exact copy":
        parts.append(t["sim_ev_exact"].format(share=_pct(e.exact)))
    elif pair.kind == "reordered copy":
        parts.append(t["sim_ev_reordered"].format(share=_pct(e.reordered)))
    if e.aligned is not None:
        parts.append(t["sim_ev_aligned"].format(aligned=f"{e.aligned:.2f}", saved=f"{e.as_saved:.2f}"))
    if e.kappa is not None:
        interval = t["sim_ev_interval"].format(lo=f"{e.kappa_ci[0]:.2f}", hi=f"{e.kappa_ci[1]:.2f}") \
            if e.kappa_ci else ""
        parts.append(t["sim_ev_behaviour"].format(agreement=_pct(e.agreement), kappa=f"{e.kappa:.2f}",
                                                  interval=interval) + _unusual(pair, t, median))
        if e.both_wrong:
            parts.append(t["sim_ev_same_wrong"].format(same=_pct(e.same_wrong), both=e.both_wrong))
    if e.weights_note and e.exact is None:
        parts.append(t["sim_ev_no_weights"].format(note=e.weights_note))
    return "; ".join(parts)


def who(member, t: dict[str, str]) -> str:
    """Where a member comes from: "" for this batch, else the compared folder's label."""
    return t["sim_compared"].format(origin=member.origin) if member.origin else ""


def report_section(found: Found, students: int, lang: str) -> dict:
    """The class report's "Similar pairs" context: the summary line and one row per flagged pair."""
    t = similarity_strings(lang)
    rows = [{"a": p.a.key, "a_from": who(p.a, t), "b": p.b.key, "b_from": who(p.b, t),
             "kind": t[f"sim_kind_{p.kind}"], "score": f"{p.score:.2f}",
             "unusual": t["sim_sd"].format(z=f"{p.evidence.z:.1f}") if p.evidence.z is not None else "–",
             "evidence": evidence_text(p, t, found.median)} for p in found.pairs]
    pairs = students * (students - 1) // 2
    summary = t["sim_summary"].format(flagged=len(found.pairs), pairs=pairs, students=students,
                                      median=_num(found.median), spread=_num(found.spread))
    return {"t": t, "rows": rows, "summary": summary}


def _unusual(pair: Pair, t: dict[str, str], median: float | None) -> str:
    z = pair.evidence.z
    return t["sim_ev_unusual"].format(z=f"{z:.1f}", median=_num(median)) if z is not None else ""


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f}%"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
