# The two commands that work on a fresh machine:
#   make demo   set up, then grade the example submissions into reports (out/demo/)
#   make test   set up, then run the tests (make test-all: the slow ones too)
# Point GRADER_DATA at a CIFAR-10 copy (official archive, its folder, or an image tree .tar.gz);
# unset, the official archive is downloaded once into the per-user cache.

GRADER_DATA ?= $(abspath $(wildcard ../shared/data/cifar10-jpeg.tar.gz))
export GRADER_DATA
PYTEST_ARGS ?=

.PHONY: setup setup-test demo test test-all bench clean

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --test

demo: setup
	.venv/bin/grader data info
	.venv/bin/grader batch submissions --out out/demo --jobs 2

test: setup-test
	.venv/bin/python -m pytest -n 2 $(PYTEST_ARGS)

test-all: setup-test
	.venv/bin/python -m pytest -n 2 --runslow $(PYTEST_ARGS)

bench: setup
	for b in bench/bench_*.py; do echo "== $$b"; .venv/bin/python $$b || exit 1; done

clean:
	rm -rf out build dist *.egg-info
