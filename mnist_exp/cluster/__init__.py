"""Sweep jobs on a cluster: what the queue says of them, and waiting for them without waiting forever.

Light: the launcher plugins under ``hydra_plugins/mnist_exp_launchers`` import it when a sweep
launches. It records nothing itself: what a lost or unschedulable job leaves in MLflow is
``mnist_exp.tracking.sweeps``'s to write.
"""
