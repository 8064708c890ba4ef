"""The experiment presets (installed as ``mnist_exp.experiments``; Hydra sees them as the group ``experiment``)."""
