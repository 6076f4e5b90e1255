"""Grade a whole class: a pool of child processes (or a Dask cluster), resumable, then the
gradebook, the Gradescope files and the class report.

    run.run_batch(submissions_dir, out_dir, settings=..., executor=...) -> BatchSummary
"""
