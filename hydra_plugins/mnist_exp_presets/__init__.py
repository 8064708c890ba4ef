"""The experiment presets (the checkout's ``experiments/``) as Hydra's config group ``experiment``.

Hydra's search path adds roots, and a root's groups are its sub-folders. The presets live in a
folder of their own beside ``conf/``, so a config source presents that folder as the one group
``experiment``, and a search-path plugin puts it on mnist-exp's search path (only mnist-exp's:
another Hydra app in the same environment is left alone). Hydra finds both by its plugin scan
of ``hydra_plugins``, in any process that composes a config; they stay light, as every plugin
is imported at start-up.
"""

from __future__ import annotations

import os
from importlib.resources import files

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import OmegaConf

from mnist_exp.layout import CONFIG_MODULE, EXPERIMENT_GROUP, EXPERIMENTS_MODULE

SCHEME = "mnist-exp-experiments"


class PresetsConfigSource(ConfigSource):
    """A package folder of YAML presets, seen as the single config group ``experiment``."""

    def __init__(self, provider: str, path: str) -> None:
        super().__init__(provider=provider, path=path)
        self.folder = str(files(self.path))  # the package's folder: the checkout's in an editable install

    @staticmethod
    def scheme() -> str:
        return SCHEME

    def _file(self, config_path: str) -> str | None:
        """The file or folder behind ``config_path`` (``experiment/NAME``), or None outside the group."""
        group, _, rest = config_path.strip("/").partition("/")
        if group != EXPERIMENT_GROUP:
            return None
        return os.path.join(self.folder, rest) if rest else self.folder

    def load_config(self, config_path: str) -> ConfigResult:
        path = self._file(self._normalize_file_name(config_path))
        if path is None or not os.path.isfile(path):
            raise ConfigLoadError(f"Config not found: {config_path}")
        with open(path, encoding="utf-8") as handle:
            header = ConfigSource._get_header_dict(handle.read(512))
            handle.seek(0)
            return ConfigResult(
                config=OmegaConf.load(handle),
                path=f"{self.scheme()}://{self.path}",
                provider=self.provider,
                header=header,
            )

    def available(self) -> bool:
        return os.path.isdir(self.folder)

    def is_group(self, config_path: str) -> bool:
        if config_path.strip("/") == "":
            return True
        path = self._file(config_path)
        return path is not None and os.path.isdir(path)

    def is_config(self, config_path: str) -> bool:
        path = self._file(self._normalize_file_name(config_path))
        return path is not None and os.path.isfile(path)

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        if config_path.strip("/") == "":
            return [EXPERIMENT_GROUP] if results_filter in (None, ObjectType.GROUP) else []
        path = self._file(config_path)
        if path is None or not os.path.isdir(path):
            return []
        found: list[str] = []
        for name in os.listdir(path):
            self._list_add_result(found, os.path.join(config_path, name), name, results_filter)
        return sorted(set(found))


class PresetsSearchPath(SearchPathPlugin):
    """Add the experiment presets to mnist-exp's search path, after its config tree."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if any(entry.path == f"pkg://{CONFIG_MODULE}" for entry in search_path.get_path()):
            search_path.append(provider="mnist-exp", path=f"{SCHEME}://{EXPERIMENTS_MODULE}")
