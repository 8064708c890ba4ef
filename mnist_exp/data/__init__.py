"""Verified provisioning and loading of MNIST-style datasets."""

from mnist_exp.data.idx import DataError
from mnist_exp.data.store import DatasetFiles, Splits, load, pull

__all__ = ["DataError", "DatasetFiles", "Splits", "load", "pull"]
