"""Reports of one submission: HTML (self-contained) and PDF (A4) from a GradeResult.

    render_html(result, lang="en") -> str
    render_pdf(html) -> bytes
    write_report(result, out_dir, lang="en", pdf=True) -> [Path]

Figures (figures.py), labels (i18n/) and the base template/CSS are generic, for the class
report to reuse. See docs/report.md.
"""

from grader.report.render import render_html, render_pdf, write_report

__all__ = ["render_html", "render_pdf", "write_report"]
