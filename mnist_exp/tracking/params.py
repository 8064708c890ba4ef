"""A config as MLflow params: dotted keys and string values, as a run logs them and the config hash reads them."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


def flatten(node: Any, prefix: str = "") -> dict[str, str]:
    """Every leaf of a resolved config as ``{"dotted.name": "value"}``.

    Lists of plain values stay one value (``[28, 28, 1]``); lists of nodes are indexed.
    """
    if isinstance(node, DictConfig | dict):
        items = node.items()
    elif isinstance(node, ListConfig | list) and any(isinstance(v, DictConfig | dict) for v in node):
        items = enumerate(node)
    else:
        value = OmegaConf.to_container(node) if isinstance(node, ListConfig) else node
        return {prefix: str(value)}
    flat: dict[str, str] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat
