"""Benchmarks: inference latency per method (`latency`), accuracy sweeps over methods and seeds
(`accuracy`), and the training-step cost of RiM's one-pass layout (`step`). `rim bench ...`
runs them; each writes JSON, a markdown table and a PNG plot."""
