"""mnist-exp's Optuna sweeper, found by Hydra's plugin discovery (plugins live under ``hydra_plugins``)."""
