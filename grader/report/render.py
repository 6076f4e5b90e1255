"""Render one submission's report: HTML through Jinja, PDF through weasyprint, then write them.

    render_html(results, lang="en") -> str     pure
    render_pdf(html) -> bytes                  pure
    write_report(results, out_dir, lang, pdf) -> [paths]    touches disk (through write_pages)
    write_pages(html, out_dir, names, pdf) -> [paths]       HTML and its PDF, for any report

The same template serves both: screen CSS for the browser, print CSS (A4, no figure or table
split across pages) for weasyprint.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from grader import atomic
from grader.errors import GraderError

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


def render_html(results: Mapping[str, Any], *, lang: str = "en") -> str:
    """The report of one results.json dict as one self-contained HTML page (figures embedded).

    Args:
        results: a results.json dict (docs/results-schema.md), graded or error.
        lang: "en" or "zh"; every label and heading follows it.
    Raises:
        GraderError: for an unknown ``lang`` or a dict that is not a schema-1 result.
    """
    from grader.report.context import build_context
    from grader.report.figures import warn_if_no_cjk_font

    if lang == "zh":
        warn_if_no_cjk_font()
    context = build_context(results, lang)
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


def write_report(results: Mapping[str, Any], out_dir: Path, *, lang: str = "en",
                 pdf: bool = True) -> list[Path]:
    """Write ``report.html`` (and ``report.pdf`` unless ``pdf`` is False) into ``out_dir``, atomically.

    Returns:
        the paths written, HTML first.
    Raises:
        GraderError: as render_html and render_pdf do.
    """
    return write_pages(render_html(results, lang=lang), out_dir, pdf=pdf)


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


def load_results(path: Path) -> dict:
    """Read a results.json file.

    Raises:
        GraderError: naming the file when it is missing or not JSON.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GraderError(f"{path} does not exist", "pass the results.json that grader grade wrote") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GraderError(f"{path} is not a JSON results file ({exc})",
                          "pass the results.json that grader grade wrote") from None


def report_command(*, results: str, out_dir: str, lang: str = "en", no_pdf: bool = False) -> int:
    """`grader report`: re-render the report of a results.json without re-evaluating. Returns 0."""
    import click

    try:
        html = render_html(load_results(Path(results)), lang=lang)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:  # a hand-edited value
        raise GraderError(f"{results} holds a value of the wrong type or shape ({type(exc).__name__}: {exc})",
                          "pass the results.json that grader grade wrote, unedited, or grade the "
                          "submission again (docs/results-schema.md gives each key's type)") from None
    atomic.ensure_dir(out_dir, hint="pass an --out folder you can write to")
    for path in write_pages(html, Path(out_dir), pdf=not no_pdf):
        click.echo(str(path))
    return 0
