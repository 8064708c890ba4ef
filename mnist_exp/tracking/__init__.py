"""Everything mnist-exp keeps in MLflow.

- ``names``: every tag, metric, param, artifact, file and environment variable name;
- ``store``: the store's URI, checks, lock and client;
- ``runs``: what a run records about itself, and its failures and stops;
- ``record``: a run's writes, retried, then journaled while the store is away;
- ``epochs``: the per-epoch logger; ``checkpoints``: a run's checkpoint and resume point;
- ``multirun``: where this process stands in a multirun; ``sweep_callback``: the Hydra callback;
- ``liveness``: who runs a run, whether that process lives, and the claim that makes one owner;
- ``sweeps``: a multirun's parent and child runs; ``reports``: sweep summaries;
- ``registry``: logged and registered models; ``sync``, ``migrate``, ``servers``: the store's upkeep.
"""
