"""The commands layer: what each `grader` command does around the library, and the only code that
prints to the terminal or picks an exit code (``grader.commands.exits``).

    grading.grade_command / check_command / gradescope_command / report_command
    batch.batch_command
    console: summaries and the batch progress bar

Library code below this layer returns values or raises ``grader.errors.GraderError``.
"""
