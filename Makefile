# echo_from_noise: one-command set-up, tests, demo and benchmarks on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test test-nbs test-py test-browser browser-deps docs export check-export readme notebooks demo bench clean

# The torch pin installs the CPU wheel on laptops and CI; pyproject asks only for torch>=2.2 so that
# environment.yml's CUDA build satisfies it on GPU nodes.
setup: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@# ipykernel writes the spec into a temp folder's subfolder and removes only the subfolder: give it one we remove
	@scratch=$$(mktemp -d) && TMPDIR=$$scratch $(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null; \
	rc=$$?; rm -rf $$scratch; exit $$rc
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

# The pipeline notebooks share one smoke study (paper.scratch_run) in a scratch folder that is removed afterwards.
test-nbs: setup
	@scratch=$$(mktemp -d) && \
	TMPDIR=$$scratch EFN_SCRATCH_DIR=$$scratch OMP_NUM_THREADS=1 $(BIN)/nbdev-test --n-workers 2; rc=$$?; rm -rf $$scratch; exit $$rc

# Two workers, one test file each at a time (module fixtures such as the smoke study run once), one BLAS thread per
# worker so that the two never fight over the two cores.
# TMPDIR: everything the tests make in the temp folder (pytest's tmp_path, torchrun's and Jupyter kernels' folders)
# goes into one scratch folder that is removed afterwards.
test-py: setup
	@scratch=$$(mktemp -d) && \
	TMPDIR=$$scratch OMP_NUM_THREADS=1 $(BIN)/pytest -q -n 2 --dist loadfile; rc=$$?; rm -rf $$scratch; exit $$rc

test: check-export browser-deps test-nbs test-py

# Chromium for the browser tests (Debian's package; Playwright drives it, no browser download): installed when this user
# may (root, or sudo without a password); otherwise the reason is printed and the browser tests skip, saying so.
browser-deps: setup
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then run=; elif sudo -n true 2>/dev/null; then run="sudo -n"; \
	else echo "browser tests: Chromium is not installed and this user cannot install it (not root, no passwordless sudo): they will skip"; exit 0; fi; \
	echo "browser tests: installing Debian's chromium (apt-get; log in .venv/apt-chromium.log)"; \
	{ $$run apt-get update -q && $$run apt-get install -y -q chromium; } > .venv/apt-chromium.log 2>&1 || \
	echo "browser tests: apt-get could not install chromium (see .venv/apt-chromium.log): they will skip"

# The editor widget and the documentation site in headless Chromium, on their own.
test-browser: setup browser-deps
	$(BIN)/pytest -q -rs -m browser tests/test_editor_browser.py tests/test_docs.py

# The documentation site, one page per notebook with the pictures the notebooks carry, into _docs/ (tools/make_docs.py
# says why nbconvert and not Quarto).
docs: setup
	$(BIN)/python tools/make_docs.py

# Execute the module notebooks in place so that they carry their pictures (smoke/phantom scale, a few minutes);
# commit them afterwards. tests/test_notebooks.py checks sizes and output kinds.
notebooks: setup
	$(BIN)/python tools/run_notebooks.py

# The whole study on the built-in phantom, cpu profile (64 px): data, two SDMs, synthesis, six segmenters,
# Table 1 and Figure 3 in runs/demo. Finished stages are skipped, so `make demo` again resumes.
demo: setup
	$(BIN)/efn paper --profile cpu --out runs/demo

# Speed and quality targets live here, never in the tests; each script writes its table beside it (benchmarks/,
# experiments/; index: benchmarks/README.md), run as a module from the repository root. The demo
# and sampler benchmarks read the finished demo run (made first if missing; a finished one is reused).
bench: setup demo
	$(BIN)/python -m benchmarks.bench_phantom
	$(BIN)/python -m benchmarks.bench_sdm
	$(BIN)/python -m benchmarks.bench_step
	$(BIN)/python -m benchmarks.bench_demo
	$(BIN)/python -m experiments.samplers --run runs/demo
	$(BIN)/python -m experiments.mix --run runs/demo
	$(BIN)/python -m benchmarks.bench_robustness
	@# on a machine with a CUDA GPU only (benchmarks/gpu.md)
	@if $(BIN)/python -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then \
	$(BIN)/python -m benchmarks.bench_gpu_step && $(BIN)/python -m benchmarks.bench_gpu; \
	else echo "bench: no CUDA GPU here, benchmarks/bench_gpu*.py skipped"; fi

clean:
	rm -rf $(VENV) .pytest_cache _proc _docs test-artifacts
