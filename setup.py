"""Only what pyproject.toml cannot say: every grader package, plus templates/ as grader.templates."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["grader", "grader.*"]) + ["grader.templates"],
    package_dir={"grader.templates": "templates"},
)
