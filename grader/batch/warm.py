"""Imported once by the batch's forkserver, so that every grading child starts with the heavy
modules already loaded (seconds each, cold), and with the pre-check's allow-lists already built
(read from the package under the pinned torch; under another torch they are computed from it,
and importing torch costs a grading process over a second). Only the names are needed; nothing
of a submission is ever loaded in a grading process.

The forkserver itself survives only an ImportError in a preloaded module, and weasyprint without
Pango raises OSError: one such failure would stop the whole batch. So each module is imported
here, and one that fails is skipped; a child then meets the same error where it is handled (a
missing PDF becomes the row's report error, and the grade stands).
"""

import importlib

HEAVY_MODULES = ("grader.pipeline", "grader.report.render", "grader.report.context", "grader.report.figures",
                 "jinja2", "matplotlib.figure", "matplotlib.backends.backend_agg", "weasyprint")

for _name in HEAVY_MODULES:
    try:
        importlib.import_module(_name)
    except Exception:  # noqa: BLE001 - see the module docstring
        pass

try:
    from grader.submission.pickle_scan import stock_module_names, weights_only_globals

    stock_module_names()  # cached (functools.cache): every forked child inherits the result
    weights_only_globals()
except Exception:  # noqa: BLE001 - see the module docstring; a child builds them itself
    pass
