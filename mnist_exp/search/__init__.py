"""Hyperparameter search with Optuna: the search space from Hydra's sweep syntax, the study's ask/tell
loop with parallel workers, and the job's side (reporting each epoch to its trial, stopping when pruned).

The sweeper itself is the Hydra plugin ``hydra_plugins.mnist_exp_sweeper``; it only wires these together.
"""
