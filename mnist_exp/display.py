"""Short forms of values for what people read: run names, tables, legends. The exact values stay in params."""

from __future__ import annotations

import re


def short(value: object) -> str:
    """A number in at most 3 significant digits (``1e-05`` written ``1e-5``); anything else as it is.

    >>> [short(v) for v in (0.005399484409787433, 0.003, 0.25, 64, 1e-05, 123456.0, "0.01", "adam")]
    ['0.0054', '0.003', '0.25', '64', '1e-5', '1.23e5', '0.01', 'adam']
    """
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        try:
            value = int(value) if re.fullmatch(r"[+-]?\d+", value) else float(value)
        except ValueError:
            return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", f"{value:.3g}")
    return str(value)


# How a run name writes a config key: its last part, or this shorter form.
SHORT_KEYS = {"learning_rate": "lr", "batch_size": "bs", "weight_decay": "wd", "lr_schedule": "schedule"}
RUN_NAME_LIMIT = 60  # characters: what the UI's run-name column shows whole
LONG_VALUE = 12  # characters: a longer value (a path, a digest) is cut to its start


def short_item(key: str, value: str) -> str:
    """``key=value`` as a run name shows it: ``optimizer.learning_rate=0.00300`` -> ``lr=0.003``."""
    last = key.lstrip("+~").rsplit(".", 1)[-1]
    shown = short(value)
    if len(shown) > LONG_VALUE:
        shown = shown[: LONG_VALUE - 4] + "…"
    return f"{SHORT_KEYS.get(last, last)}={shown}"


def cut(label: str, suffix: str = "") -> str:
    """``label`` then ``suffix``, the label cut so that the whole is at most ``RUN_NAME_LIMIT`` characters."""
    room = RUN_NAME_LIMIT - len(suffix)
    return (label if len(label) <= room else label[: room - 1] + "…") + suffix


def run_label(recipe: str, items: list[str]) -> str:
    """A run's name: the recipe, then what sets the run apart, cut to ``RUN_NAME_LIMIT`` characters.

    >>> run_label("cnn-mnist-adam", ["seed=3", "precision=float32"])
    'cnn-mnist-adam seed=3,precision=float32'
    """
    return cut(f"{recipe} {','.join(items)}" if items else recipe)
