"""mnist-exp's Hydra launchers: hydra-submitit-launcher's SLURM launcher, made to survive the cluster."""
