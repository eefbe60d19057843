"""Research ablations on the phantom: one question each, with its report beside it. Run each as a module from the
repository root: `python -m experiments.strength --run runs/demo`; benchmarks/README.md is the index."""
