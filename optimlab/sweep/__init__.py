"""Hyperparameter sweeps on Optuna (``optimlab sweep``): search spaces, storage, workers, results.

space.py: ``--space`` parsing, grids at a budget, coarse-to-fine narrowing. storage.py: the journal
file or PostgreSQL storage. plan.py: one study per (task, optimizer, sampler) with its budget
queued. objective.py: one trial through the engine. runner.py: worker processes.
results.py / summary.py: the sweep read back as rows and summarized.
"""
