"""mnist-exp: Hydra-configured CNN experiments on MNIST-style data, tracked in MLflow."""

from mnist_exp.config import register_resolvers

register_resolvers()
