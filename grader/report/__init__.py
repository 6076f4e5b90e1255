"""Reports of one submission: HTML (self-contained) and PDF (A4) from a results.json dict.

    render_html(results, lang="en") -> str
    render_pdf(html) -> bytes
    write_report(results, out_dir, lang="en", pdf=True) -> [Path]
    report_command(results, out_dir, lang, no_pdf) -> exit code

Figures (figures.py), labels (i18n.py) and the base template/CSS are generic, for the class
report to reuse. See docs/report.md.
"""

from grader.report.render import render_html, render_pdf, report_command, write_report

__all__ = ["render_html", "render_pdf", "report_command", "write_report"]
