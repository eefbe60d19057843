# echo_from_noise: one-command set-up, tests, demo and benchmarks on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test test-nbs test-py export check-export readme demo bench clean

# The torch pin installs the CPU wheel on laptops and CI; pyproject asks only for torch>=2.2 so that
# environment.yml's CUDA build satisfies it on GPU nodes.
setup: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

export: setup
	$(BIN)/nbdev-export
	$(BIN)/python tools/make_readme.py

# The package and README must be exactly what the notebooks export: snapshot, export in place, compare.
check-export: setup
	@snap=$$(mktemp -d) && cp -r echo_from_noise README.md $$snap/ && \
	$(BIN)/nbdev-export && $(BIN)/python tools/make_readme.py && \
	if diff -r -x __pycache__ $$snap/echo_from_noise echo_from_noise && diff $$snap/README.md README.md; \
	then echo "export check: package and README match the notebooks"; rm -rf $$snap; \
	else echo "export check FAILED: the package or README was out of step with nbs/ (now re-exported; commit it)"; \
	rm -rf $$snap; exit 1; fi

test-nbs: setup
	$(BIN)/nbdev-test --n-workers 2

test-py: setup
	$(BIN)/pytest -q

test: check-export test-nbs test-py

# Until the SDM and segmentation stages land (issues 5-6), the demo makes the phantom dataset and its augmented
# label maps, then says what is missing instead of pretending to run a study.
DEMO_DATA := runs/demo/phantom
demo: setup
	test -f $(DEMO_DATA)/manifest.csv || $(BIN)/efn phantom $(DEMO_DATA) --patients 50 --size 64 --seed 0
	test -f $(DEMO_DATA)_aug/manifest.csv || $(BIN)/efn augment $(DEMO_DATA) $(DEMO_DATA)_aug --copies 5 --seed 0
	@echo "make demo: the phantom dataset and its deformed label maps are in runs/demo/; the study itself is not built yet." >&2; \
	echo "  missing: the diffusion model (efn train-sdm, efn synthesize)," >&2; \
	echo "           segmentation, evaluation, Table 1 and the figures (efn paper)." >&2; \
	exit 2

# Speed targets live here, never in the tests; each script writes its table to benchmarks/.
bench: setup
	$(BIN)/python benchmarks/bench_phantom.py
	$(BIN)/python benchmarks/bench_sdm.py

clean:
	rm -rf $(VENV) .pytest_cache _proc _docs
