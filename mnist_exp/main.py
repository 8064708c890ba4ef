"""``mnist-exp``: the command-line entry point, a thin Hydra wrapper around ``train``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from mnist_exp.config import CONFIG_DIR, CONFIG_NAME


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=CONFIG_NAME)
def main(cfg: DictConfig) -> float:
    """Train one configuration; the return value is the objective that sweepers optimise."""
    from mnist_exp.train import train  # imported here so --help and config errors answer fast

    return float(train(cfg)["objective"])


if __name__ == "__main__":
    main()
