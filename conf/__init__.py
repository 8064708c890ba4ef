"""The Hydra config tree (installed as ``mnist_exp.conf``; Hydra reads it as ``pkg://mnist_exp.conf``)."""
