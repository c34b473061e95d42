"""Small synthetic tasks for the quickstart and benchmarks."""
