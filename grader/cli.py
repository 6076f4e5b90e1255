"""The `grader` command line. Thin: each command parses its options and calls one function.

Exit codes: 0 success, 1 a rubric check failed, 2 a usage or input error (or the machine's: a full
disk, no permission), 3 grader itself failed (a bug: the traceback is printed), 130 Ctrl-C.
"""

from __future__ import annotations

import errno
import functools
import sys
import traceback

import click

from grader import __version__
from grader.commands.exits import CHECK_HELP
from grader.commands.exits import HELP as EXIT_CODES
from grader.commands.exits import Exit
from grader.errors import GraderError
from grader.robustness import DEFAULT_N as DEFAULT_ROBUSTNESS

# The machine's trouble, not grader's: exit 2 with the reason rather than 3 with a traceback.
MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EPIPE, errno.EACCES, errno.EPERM, errno.EROFS}
MODEL_CODE_HELP = ("A Python file (or notebook) defining the network classes students pickled whole, "
                   "or build_model for bare state_dicts [rubric: [submission] model_code].")
DATA_HELP = "CIFAR-10 source: official archive or folder, image tree or its .tar.gz [env: GRADER_DATA]."


class ImagesPerCell(click.ParamType):
    """``--robustness``'s N: test images per corruption and severity, at least 1."""

    name = "N"

    def convert(self, value, param, ctx):
        try:
            n = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of images: give N (--robustness {DEFAULT_ROBUSTNESS}), or put "
                      "--robustness after SUBMISSION to use the default", param, ctx)
        if n < 1:
            self.fail(f"N is test images per corruption and severity, at least 1, not {n}", param, ctx)
        return n


class InputError(click.ClickException):
    """A usage or input error: printed without a traceback, exit code 2 (click's usage code)."""

    exit_code = Exit.INPUT


# The options most commands share, defined once.
DATA_OPTION = click.option("--data", "data_path", type=click.Path(), help=DATA_HELP)
PARTIAL_OPTION = click.option("--partial", is_flag=True, help="Accept a data source smaller than CIFAR-10.")
MODEL_CODE_OPTION = click.option("--model-code", type=click.Path(exists=True, dir_okay=False), help=MODEL_CODE_HELP)

def user_errors(fn):
    """Turn a GraderError, or the machine's trouble (a full disk, no permission, a closed pipe),
    into a clean message and exit code 2, never a traceback; Ctrl-C into 130; any other exception
    is grader's own bug: its traceback, a line saying so, and exit code 3."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GraderError as exc:
            raise InputError(str(exc)) from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(Exit.INTERRUPTED)
        except OSError as exc:
            if exc.errno not in MACHINE_ERRNOS:
                raise
            where = f" ({exc.filename})" if exc.filename else ""
            raise InputError(str(GraderError(f"{exc.strerror or exc}{where}", "free disk space, fix the "
                             "permissions, or keep the output's reader open (a pipe closed early)"))) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            traceback.print_exc()
            click.echo(f"grader itself failed ({type(exc).__name__}: {exc}); this is a bug in grader, not in "
                       f"your input: please report it with the traceback above (grader {__version__})", err=True)
            sys.exit(Exit.BUG)

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
@DATA_OPTION
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
@DATA_OPTION
@click.option("--partial", is_flag=True, help="Accept a source with fewer than 50,000/10,000 images.")
@user_errors
def data_prepare(data_path: str | None, partial: bool) -> None:
    """Convert the source into the cache (once), and print where it went."""
    from grader.data.describe import describe, format_description

    click.echo(format_description(describe(data_path, expect_full=not partial)))




# --- train ---------------------------------------------------------------------------------


@main.command(epilog=EXIT_CODES)
@click.option("--recipe", type=click.Choice(["homework", "fast", "fast-long", "fast-gpu"]), default="fast",
              show_default=True, help="homework: the course's reference recipe; fast: the best "
              "accuracy per second (about 80% in 2 minutes on 2 cores); fast-long: 90% within 20 minutes there; "
              "fast-gpu: airbench's 94% network with Muon, for a CUDA GPU.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Run folder to write [default: runs/<recipe>-<time>].")
@DATA_OPTION
@click.option("--epochs", type=click.IntRange(min=1), help="Override the recipe's epoch count.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same history.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--time-budget", type=click.FloatRange(min=0), help="Seconds; stop cleanly and save.")
@click.option("--resume", type=click.Path(exists=True), help="A run folder to continue.")
@click.option("--subset", type=click.IntRange(min=10), help="Train on N images spread over the set (tests).")
@PARTIAL_OPTION
@click.option("--report/--no-report", default=True, show_default=True,
              help="Grade the finished run and write results.json and the report into it.")
@user_errors
def train(**options) -> None:
    """Train a network with a recipe and write a gradable run folder."""
    from grader.commands.train import train_command

    sys.exit(train_command(**options))


# --- grade / check / report ----------------------------------------------------------------


@main.command(epilog=EXIT_CODES)
@click.argument("submission", type=click.Path(exists=True))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder for results.json and the report.")
@click.option("--rubric", type=click.Path(exists=True, dir_okay=False),
              help="rubric.toml [default: the homework's own assertions].")
@DATA_OPTION
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@PARTIAL_OPTION
@click.option("--no-sandbox", is_flag=True, help="Run the submission unsandboxed (loudly flagged).")
@MODEL_CODE_OPTION
@click.option("--no-pdf", is_flag=True, help="Write report.html without report.pdf (faster).")
@click.option("--robustness", type=ImagesPerCell(), is_flag=False, flag_value=DEFAULT_ROBUSTNESS,
              default=None, metavar="[N]",
              help=f"Also measure accuracy under CIFAR-10-C's corruptions, regenerated, on N test images per "
                   f"corruption and severity [N alone: {DEFAULT_ROBUSTNESS}] (docs/robustness.md).")
@user_errors
def grade(**options) -> None:
    """Grade one SUBMISSION (file or folder) against the rubric and write results and report."""
    from grader.commands.grading import grade_command

    sys.exit(grade_command(**options))


@main.command(epilog=CHECK_HELP)
@click.argument("submission", type=click.Path(exists=True))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="grader-check",
              show_default=True, help="Folder for results.json and the report.")
@click.option("--rubric", type=click.Path(exists=True, dir_okay=False), help="rubric.toml.")
@DATA_OPTION
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@PARTIAL_OPTION
@click.option("--no-sandbox", is_flag=True, help="Run your own network unsandboxed (flagged in the report).")
@MODEL_CODE_OPTION
@user_errors
def check(**options) -> None:
    """Self-check before handing in: grade with the public checks; the first line printed is the
    verdict, READY or NOT READY with the first thing to fix."""
    from grader.commands.grading import check_command

    sys.exit(check_command(**options))


@main.command(epilog=EXIT_CODES)
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@click.option("--no-pdf", is_flag=True, help="Write only report.html.")
@user_errors
def report(**options) -> None:
    """Re-render report.html and report.pdf from a RESULTS json, without re-evaluating."""
    from grader.commands.grading import report_command

    sys.exit(report_command(**options))


# --- batch ---------------------------------------------------------------------------------


@main.command(epilog=EXIT_CODES)
@click.argument("submissions_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@click.option("--rubric", type=click.Path(exists=True, dir_okay=False), help="rubric.toml.")
@click.option("--jobs", type=click.IntRange(min=1), help="Parallel workers [default: cores].")
@DATA_OPTION
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True)
@click.option("--scheduler", help="Dask scheduler address, with --executor dask.")
@click.option("--no-sandbox", is_flag=True, help="Run submissions unsandboxed (loudly flagged).")
@click.option("--retry-failed", is_flag=True,
              help="Grade again the submissions that timed out, ran out of memory or crashed last time.")
@click.option("--no-pdf", is_flag=True, help="Write report.html without report.pdf (faster).")
@click.option("--no-bom", is_flag=True, help="Write gradebook.csv without the UTF-8 byte-order mark "
              "(Excel on Windows needs it to show Chinese names; some scripts read its first column wrong).")
@PARTIAL_OPTION
@MODEL_CODE_OPTION
@click.option("--compare-with", "compare_with", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Also compare the class with this graded folder (see `grader similarity`); repeatable.")
@user_errors
def batch(**options) -> None:
    """Grade every submission in SUBMISSIONS_DIR; write a gradebook and Gradescope results."""
    from grader.commands.batch import batch_command

    sys.exit(batch_command(**options))


@main.command(epilog=EXIT_CODES)
@click.argument("batch_out", type=click.Path(exists=True, file_okay=False))
@click.option("--compare-with", "compare_with", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Another graded folder (the reference solution's, an earlier term's batch output); repeatable.")
@DATA_OPTION
@PARTIAL_OPTION
@user_errors
def similarity(**options) -> None:
    """Find students whose networks are copies of, or derived from, each other's (BATCH_OUT/similarity.csv)."""
    from grader.commands.similarity import similarity_command

    sys.exit(similarity_command(**options))


@main.command(epilog=EXIT_CODES)
@click.option("--root", type=click.Path(file_okay=False), default="/autograder", show_default=True)
@click.option("--rubric", type=click.Path(exists=True, dir_okay=False), help="rubric.toml.")
@DATA_OPTION
@PARTIAL_OPTION
@MODEL_CODE_OPTION
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="Language of the output students see and of the report.")
@user_errors
def gradescope(**options) -> None:
    """Run as a Gradescope autograder: ROOT/submission in, ROOT/results/results.json out."""
    from grader.commands.grading import gradescope_command

    sys.exit(gradescope_command(**options))


# --- platforms -----------------------------------------------------------------------------


@main.command(epilog=EXIT_CODES)
@click.option("--root", type=click.Path(file_okay=False), default="/grade", show_default=True)
@click.option("--rubric", type=click.Path(exists=True, dir_okay=False),
              help="rubric.toml [default: params.grader.rubric in ROOT/data/data.json, else the homework's].")
@DATA_OPTION
@PARTIAL_OPTION
@MODEL_CODE_OPTION
@click.option("--no-sandbox", is_flag=True, help="Run the submission unsandboxed (loudly flagged).")
@click.option("--lang", type=click.Choice(["en", "zh"]), default=None,
              help="Language of what the student reads [default: params.grader.lang in ROOT/data/data.json, else en].")
@user_errors
def prairielearn(**options) -> None:
    """Run as a PrairieLearn external grader: ROOT/student in, ROOT/results/results.json out."""
    from grader.commands.platforms import prairielearn_command

    sys.exit(prairielearn_command(**options))


@main.command(epilog=EXIT_CODES)
@click.argument("submission", type=click.Path(exists=True))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="grader-classroom",
              show_default=True, help="Folder for results.json and report.html.")
@click.option("--rubric", type=click.Path(exists=True, dir_okay=False), help="rubric.toml.")
@DATA_OPTION
@PARTIAL_OPTION
@MODEL_CODE_OPTION
@click.option("--no-sandbox", is_flag=True, help="Run the submission unsandboxed (loudly flagged).")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="Language of the test names and messages, the log's summary and the report.")
@user_errors
def classroom(**options) -> None:
    """Grade for GitHub Classroom: the `result` step output goes to $GITHUB_OUTPUT."""
    from grader.commands.platforms import classroom_command

    sys.exit(classroom_command(**options))


@main.command(epilog=EXIT_CODES)
@click.argument("batch_out", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["canvas", "moodle", "csv"]), required=True)
@click.option("--roster", type=click.Path(exists=True, dir_okay=False), required=True,
              help="CSV with a 'student' column (gradebook ids) and the platform's identity columns.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="The CSV file to write.")
@click.option("--assignment", help='Canvas assignment column, as Canvas names it: "HW2 (1234)".')
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="Language of the feedback column, which Moodle shows the student.")
@user_errors
def export(**options) -> None:
    """Export a batch's grades (BATCH_OUT) as a Canvas, Moodle or plain CSV gradebook."""
    from grader.commands.platforms import export_command

    sys.exit(export_command(**options))
