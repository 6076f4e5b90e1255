"""Render one submission's report: HTML through Jinja, PDF through weasyprint, then write them.

    render_html(result, lang="en") -> str      pure
    render_pdf(html) -> bytes                  pure
    write_report(result, out_dir, lang, pdf) -> [paths]     touches disk (through write_pages)
    write_pages(html, out_dir, names, pdf) -> [paths]       HTML and its PDF, for any report

The same template serves both: screen CSS for the browser, print CSS (A4, no figure or table
split across pages) for weasyprint.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from grader import atomic
from grader.errors import GraderError
from grader.results import GradeResult

SUBMISSION_TEMPLATE = "submission.html.j2"
HTML_NAME, PDF_NAME = "report.html", "report.pdf"


@lru_cache(maxsize=1)
def environment():
    """The Jinja environment over the templates shipped as ``grader.templates`` (autoescaped).

    Other reports (the class report) can extend ``base.html.j2`` and import ``macros.html.j2``.
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("grader.templates", "."),
        autoescape=jinja2.select_autoescape(("html", "html.j2", "j2")),
        undefined=jinja2.StrictUndefined,  # a missing label is a bug, not an empty string
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["css_string"] = css_string
    return env


def css_string(value) -> str:
    """Text made safe inside a double-quoted CSS string in a <style> element.

    HTML escaping does not apply there (a <style> is raw text), so anything but letters, digits
    (any script) and a few marks becomes a CSS hex escape: a student name cannot end the string,
    the rule or the element.
    """
    from markupsafe import Markup

    text = value.unescape() if isinstance(value, Markup) else str(value)
    return Markup("".join(c if c.isalnum() or c in " -_.,·:()" else f"\\{ord(c):x} " for c in text))


def render_html(result: GradeResult, *, lang: str = "en") -> str:
    """The report of one grade as one self-contained HTML page (figures embedded).

    Args:
        result: the grade, graded or error.
        lang: "en" or "zh"; every label and heading follows it.
    Raises:
        GraderError: for an unknown ``lang``.
    """
    from grader.report.context import build_context
    from grader.report.figures import warn_if_no_cjk_font

    if lang == "zh":
        warn_if_no_cjk_font()
    context = build_context(result, lang)
    return environment().get_template(SUBMISSION_TEMPLATE).render(**context)


def render_pdf(html: str) -> bytes:
    """An A4 PDF (selectable text) of ``html`` as rendered by weasyprint.

    Raises:
        GraderError: when weasyprint or its system libraries (Pango) are missing.
    """
    try:
        import weasyprint
    except (ImportError, OSError) as exc:
        raise GraderError(f"cannot write the PDF report: weasyprint is unavailable ({exc})",
                          "pip install weasyprint (it needs Pango: apt-get install libpango-1.0-0), "
                          "or pass --no-pdf") from exc
    # weasyprint logs every CSS property it ignores; the reports use a few on purpose (screen-only).
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    return weasyprint.HTML(string=html).write_pdf()


def write_report(result: GradeResult, out_dir: Path, *, lang: str = "en",
                 pdf: bool = True) -> list[Path]:
    """Write ``report.html`` (and ``report.pdf`` unless ``pdf`` is False) into ``out_dir``, atomically.

    Returns:
        the paths written, HTML first.
    Raises:
        GraderError: as render_html and render_pdf do.
    """
    return write_pages(render_html(result, lang=lang), out_dir, pdf=pdf)


def write_pages(html: str, out_dir: Path, *, names: tuple[str, str] = (HTML_NAME, PDF_NAME),
                pdf: bool = True) -> list[Path]:
    """Write ``html`` and (unless ``pdf`` is False) its PDF into ``out_dir``, atomically. Without
    a PDF of this grade (not asked for, or rendering failed) the folder's old PDF is removed, so
    that no report of an earlier grade stays beside a new results.json.

    Args:
        names: the file names of the HTML and the PDF.

    Returns:
        the paths written, HTML first.
    Raises:
        GraderError: as render_pdf does.
    """
    html_name, pdf_name = names
    out_dir = Path(out_dir)
    written = [atomic.write_text(out_dir / html_name, html)]
    old_pdf = out_dir / pdf_name
    if not pdf:
        old_pdf.unlink(missing_ok=True)
        return written
    try:
        written.append(atomic.write_bytes(old_pdf, render_pdf(html)))
    except BaseException:
        old_pdf.unlink(missing_ok=True)
        raise
    return written
