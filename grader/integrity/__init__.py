"""Checks that a grade was earned honestly, run in the grading process.

``secret`` holds what a submission cannot know (the grading secret, mixed into every seed it must
not predict); ``memorisation`` probes for a memorised test set with perturbed copies of a secret
subset of it.
"""
