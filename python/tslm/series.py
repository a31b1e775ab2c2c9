"""Reading recordings from CSV files into the arrays the API takes."""

from __future__ import annotations

import os
from typing import List, Optional, Tuple

import numpy as np

from .errors import InvalidArgumentError


def read_csv(path) -> Tuple[np.ndarray, Optional[List[str]]]:
    """A CSV recording as (values float32 [channels, samples], column names or None).

    The layout `tslm run --series` reads: one column per channel, one row per sample, an
    optional first row of names; empty lines and lines starting with "#" are skipped.
    Raises InvalidArgumentError for ragged rows or fields that are not numbers (NaN and Inf are
    read as such; the library refuses them when they reach a call).
    """
    path = os.fspath(path)
    names: Optional[List[str]] = None
    rows: List[List[float]] = []
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = [x.strip() for x in line.split(",")]
            try:
                values = [float(x) for x in fields]
            except ValueError:
                if rows or names is not None:
                    raise InvalidArgumentError(f"{path}, line {number}: a field is not a number") from None
                names = [x.strip('"') for x in fields]
                continue
            width = len(names) if names is not None else (len(rows[0]) if rows else len(values))
            if len(values) != width:
                raise InvalidArgumentError(f"{path}, line {number}: {len(values)} fields, expected {width}")
            rows.append(values)
    if not rows:
        raise InvalidArgumentError(f"{path} holds no samples")
    return np.ascontiguousarray(np.asarray(rows, dtype=np.float32).T), names
