"""Measuring explainers (fidelity, reference values, latency) and distill, which picks one."""
