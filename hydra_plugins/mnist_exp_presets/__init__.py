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

from hydra._internal.core_plugins.file_config_source import FileConfigSource
from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult
from hydra.plugins.search_path_plugin import SearchPathPlugin

from mnist_exp.layout import CONFIG_MODULE, EXPERIMENT_GROUP, EXPERIMENTS_MODULE

SCHEME = "mnist-exp-experiments"


class PresetsConfigSource(FileConfigSource):
    """A package folder of YAML presets, seen as the single config group ``experiment``.

    Hydra's file source reads the files; this one only maps ``experiment/NAME`` onto the folder.
    """

    def __init__(self, provider: str, path: str) -> None:
        super().__init__(provider=provider, path=path)
        self.path = str(files(self.path))  # the package's folder: the checkout's in an editable install

    @staticmethod
    def scheme() -> str:
        return SCHEME

    @staticmethod
    def inside(config_path: str) -> str | None:
        """``config_path`` relative to the folder (``experiment/NAME`` -> ``NAME``), or None outside the group."""
        group, _, rest = config_path.strip("/").partition("/")
        return rest if group == EXPERIMENT_GROUP else None

    def load_config(self, config_path: str) -> ConfigResult:
        name = self.inside(config_path)
        if name is None:
            raise ConfigLoadError(f"Config not found: {config_path}")
        return super().load_config(name)

    def is_group(self, config_path: str) -> bool:
        name = self.inside(config_path)
        return config_path.strip("/") == "" or (name is not None and super().is_group(name))

    def is_config(self, config_path: str) -> bool:
        name = self.inside(config_path)
        return name is not None and super().is_config(name)

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        if config_path.strip("/") == "":
            return [EXPERIMENT_GROUP] if results_filter in (None, ObjectType.GROUP) else []
        if not self.is_group(config_path):
            return []
        found: list[str] = []
        for name in os.listdir(os.path.join(self.path, self.inside(config_path))):
            self._list_add_result(found, os.path.join(config_path, name), name, results_filter)
        return sorted(set(found))


class PresetsSearchPath(SearchPathPlugin):
    """Add the experiment presets to mnist-exp's search path, after its config tree."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if any(entry.path == f"pkg://{CONFIG_MODULE}" for entry in search_path.get_path()):
            search_path.append(provider="mnist-exp", path=f"{SCHEME}://{EXPERIMENTS_MODULE}")
