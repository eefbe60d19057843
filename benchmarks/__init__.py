"""Speed and acceptance benchmarks, and the module they share with experiments/ (common). Run each as a module from
the repository root: `python -m benchmarks.bench_demo`; benchmarks/README.md is the index."""
