"""Benchmarks for minna-tasks: every figure next to its baseline, measured in one run.

Run with `python -m benchmarks [--quick]`. Absolute times drift on shared
machines, so each figure is reported with the baseline it is compared to (the
physical commit limit, a bare-SQL cycle on the same data shape, litequeue, the
same figure at a smaller size) and as a ratio of medians over several rounds.
"""
