"""fedcop's benchmarks: `python -m bench` (or `make bench`) runs them; see docs/performance.md."""
