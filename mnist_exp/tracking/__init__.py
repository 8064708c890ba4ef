"""Everything mnist-exp keeps in MLflow.

- ``names``: every tag, metric, param, artifact, file and environment variable name;
- ``store``: the store's URI, checks, lock, client and experiment;
- ``training_run``: one training start, from which run it is to how it ended (``TrainingRun``);
- ``runs``: what a run records about itself, and its failures and stops; ``params``: a config as params;
- ``record``: a run's writes, retried, then journaled while the store is away;
- ``epochs``: the per-epoch logger; ``checkpoints``: a run's checkpoint files, local and stored;
- ``multirun``: where this process stands in a multirun; ``sweep_callback``: the Hydra callback;
- ``liveness``: who runs a run, whether that process lives, and the claim that makes one owner;
- ``sweeps``: a multirun's parent and child runs; ``reports``: sweep summaries; ``views``: the UI's saved view;
- ``registry``: logged and registered models; ``sync``, ``migrate``, ``servers``: the store's upkeep;
- ``system_metrics``: MLflow's monitor of the machine while a run lives.

What must not live here: the config's schema and checks (``mnist_exp.schema``, which may use
``params``, never the other way round), data, models and the fit.
"""
