"""Datasets by config: each dataset's ``format`` reader gives verified uint8 arrays and their digest."""

from mnist_exp.data.formats import Loaded, Splits, load, reader
from mnist_exp.data.idx import DataError
from mnist_exp.data.store import DatasetFiles, pull

__all__ = ["DataError", "DatasetFiles", "Loaded", "Splits", "load", "pull", "reader"]
