"""The `grader` command line. Thin: each command parses its options and calls one function.

Exit codes: 0 success, 1 a rubric check failed, 2 a usage or input error.
"""

from __future__ import annotations

import functools
import sys

import click

from grader import __version__
from grader.errors import GraderError

EXIT_CODES = "Exit codes: 0 success, 1 rubric failed, 2 usage or input error."
DATA_HELP = "CIFAR-10 source: official archive or folder, image tree or its .tar.gz [env: GRADER_DATA]."


def user_errors(fn):
    """Turn a GraderError into a clean message and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GraderError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


@click.group(epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="grader")
def main() -> None:
    """Train, grade and report on CIFAR-10 homework networks, safely."""


# --- data ----------------------------------------------------------------------------------


@main.group(epilog=EXIT_CODES)
def data() -> None:
    """Find, convert and describe the CIFAR-10 data."""


@data.command("info", epilog=EXIT_CODES)
@click.option("--data", "data_path", type=click.Path(), help=DATA_HELP)
@click.option("--partial", is_flag=True, help="Accept a source with fewer than 50,000/10,000 images.")
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
@user_errors
def data_info(data_path: str | None, partial: bool, as_json: bool) -> None:
    """Print source, counts per split and class, fingerprint, and whether it is official."""
    from grader.data.describe import describe, format_description

    info = describe(data_path, expect_full=not partial)
    if as_json:
        import json

        click.echo(json.dumps(info, indent=2))
    else:
        click.echo(format_description(info))


@data.command("prepare", epilog=EXIT_CODES)
@click.option("--data", "data_path", type=click.Path(), help=DATA_HELP)
@click.option("--partial", is_flag=True, help="Accept a source with fewer than 50,000/10,000 images.")
@user_errors
def data_prepare(data_path: str | None, partial: bool) -> None:
    """Convert the source into the cache (once), and print where it went."""
    from grader.data.describe import describe, format_description

    click.echo(format_description(describe(data_path, expect_full=not partial)))


