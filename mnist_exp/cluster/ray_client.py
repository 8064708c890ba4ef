"""A sweep's driver joins a Ray cluster through Ray Client, tried again where the client's server dies as it starts.

Ray Client's proxy forks a server for each client that connects, and that fork sometimes
dies in gRPC ("Starting Ray client server failed"; ray-project/ray#63202 saw it in about
7 % of connections). The sweep then ended before its first job. hydra-ray-launcher calls
``ray.init`` only where Ray is not connected yet, so this Hydra callback connects first,
with the launcher's own ``ray.init`` settings, up to ``attempts`` times. Other addresses
(none, ``auto``, a head node's) are left to the launcher, and so is a Ray Client address
that does not answer: only a failure that the proxy reports is tried again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

CLIENT_SCHEME = "ray://"


class RayClientConnect(Callback):
    """Before a sweep's jobs: ``ray.init`` to a ``ray://`` address, up to ``attempts`` times, ``pause_s`` apart."""

    def __init__(self, attempts: int, pause_s: float) -> None:
        if attempts < 1:
            raise ValueError(f"hydra.callbacks.ray_client.attempts must be at least 1, not {attempts}")
        self.attempts, self.pause_s = attempts, pause_s

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        init = OmegaConf.select(config, "hydra.launcher.ray.init")
        address = init.get("address") if init is not None else None
        if not (isinstance(address, str) and address.startswith(CLIENT_SCHEME)):
            return
        import ray

        settings = OmegaConf.to_container(init, resolve=True)
        for attempt in range(1, self.attempts + 1):
            try:
                ray.init(**settings)
                return
            except ConnectionAbortedError as exc:  # the proxy answered; its server for this client died
                if attempt == self.attempts:
                    raise
                log.warning(
                    "Ray Client at %s: %s (attempt %d of %d); connecting again in %.0f s",
                    address, str(exc).splitlines()[0], attempt, self.attempts, self.pause_s,
                )  # fmt: skip
                with contextlib.suppress(Exception):
                    ray.shutdown()
                time.sleep(self.pause_s)
