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
