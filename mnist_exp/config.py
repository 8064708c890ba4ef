"""The resolvers the configs use, the catalogue of their options, and composing them outside @hydra.main."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mnist_exp.display import short
from mnist_exp.errors import UserError
from mnist_exp.layout import CONFIG_MODULE, CONFIG_NAME, group_folder, project_root


def class_folders(path: str) -> list[str]:
    """``${class_folders:path}``: a folder dataset's class names, its sub-folders in sorted order."""
    from mnist_exp.data.folder import class_folders as names

    return names(path)


def npz_num_classes(path: str) -> int:
    """``${npz_num_classes:path}``: how many classes a NumPy archive's labels cover."""
    from mnist_exp.data.npz import npz_num_classes as count

    return count(path)


def numbered(count: int) -> list[str]:
    """``${numbered:n}``: class names "0" to "n-1"."""
    return [str(i) for i in range(int(count))]


def run_name(recipe: str, _root_: DictConfig) -> str:
    """``${run_name:recipe}``: the recipe, then what sets this run apart (see ``naming``)."""
    from mnist_exp.naming import run_name as name

    return name(recipe, _root_)


def store_files(uri: str, store_dir: str) -> str:
    """``${store_files:uri,store_dir}``: the folder of a ``sqlite:///`` store's file, else ``store_dir``."""
    if uri.startswith("sqlite:///"):
        return str(Path(uri.removeprefix("sqlite:///").split("?")[0]).parent)
    return store_dir


RESOLVERS = {
    "project_root": lambda: str(project_root()),
    "short": short,
    "catalog": lambda group, _root_: catalog(group, user_folders(_root_)),
    "len": len,
    "class_folders": class_folders,
    "npz_num_classes": npz_num_classes,
    "numbered": numbered,
    "store_files": store_files,
    "run_name": run_name,
}


def register_resolvers() -> None:
    """Register the resolvers the configs use (``${short:value}``, ``${class_folders:path}``, ...)."""
    for name, resolver in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


def compose(
    overrides: Sequence[str] = (), config_name: str = CONFIG_NAME, return_hydra_config: bool = False
) -> DictConfig:
    """Compose a packaged config (by default the experiment's) with Hydra's compose API."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return hydra_compose(config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)


def description(path: Path | None) -> str:
    """A config file's one-line description: its first comment line that is not a ``@package`` directive."""
    if path is None or not path.is_file():
        return "(from hydra.searchpath)"
    for line in path.read_text().splitlines():
        if line.startswith("#") and not line.startswith("# @package"):
            return line.lstrip("# ").strip()
        if line.strip() and not line.startswith("#"):
            break
    return ""


def user_folders(cfg: DictConfig | None) -> list[Path]:
    """The folders a config's ``hydra.searchpath`` adds (its ``file://`` entries)."""
    entries = OmegaConf.select(cfg, "hydra.searchpath", default=None) if cfg is not None else None
    return [Path(entry.removeprefix("file://")) for entry in entries or () if entry.startswith("file://")]


def searchpath_folders(argv: Sequence[str]) -> list[Path]:
    """The ``file://`` folders a command line adds to Hydra's search path (``hydra.searchpath=[...]``, ``-cd``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    folders: list[Path] = []
    for i, arg in enumerate(argv):
        if arg in ("-cd", "--config-dir") and i + 1 < len(argv):
            folders.append(Path(argv[i + 1]))
        elif arg.startswith("--config-dir="):
            folders.append(Path(arg.split("=", 1)[1]))
        elif arg.lstrip("+~").startswith("hydra.searchpath="):
            try:
                (override,) = OverridesParser.create().parse_overrides([arg])
                entries = override.value()
            except Exception:  # Hydra reports a malformed override itself
                continue
            for entry in entries if isinstance(entries, list) else [entries]:
                if isinstance(entry, str) and entry.startswith("file://"):
                    folders.append(Path(entry.removeprefix("file://")))
    return folders


def check_yaml(folders: Sequence[Path]) -> None:
    """Every YAML file under ``folders`` must parse; the first that does not is a UserError with its line and column.

    Hydra would report it as a traceback of its own and PyYAML's internals.
    """
    import yaml

    for folder in folders:
        for path in sorted(Path(folder).expanduser().rglob("*.yaml")) if Path(folder).expanduser().is_dir() else ():
            try:
                yaml.safe_load(path.read_text())
            except yaml.MarkedYAMLError as exc:
                mark, opened = exc.problem_mark or exc.context_mark, exc.context_mark
                where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                context = f"{exc.context} (from line {opened.line + 1}, column {opened.column + 1})" if opened else ""
                what = ": ".join(filter(None, [context or exc.context, exc.problem]))
                raise UserError(f"{path}{where}: YAML syntax: {what}. Fix: correct the file there") from None
            except yaml.YAMLError as exc:
                raise UserError(f"{path}: YAML syntax: {exc}. Fix: correct the file") from None


def catalog(group: str, folders: Sequence[Path] = ()) -> str:
    """Each option of a config group with its description, one per line (for ``mnist-exp --help``)."""
    options = group_files(group, folders)
    width = max(map(len, options), default=0)
    return "\n".join(f"  {name:<{width}}  {description(path)}" for name, path in options.items())


def group_files(group: str, folders: Sequence[Path] = ()) -> dict[str, Path | None]:
    """A config group's options and their files: packaged ones first, then those of user folders
    (``hydra.searchpath``; None where Hydra knows an option from a search path that is not a folder)."""
    from hydra.core.global_hydra import GlobalHydra

    found: dict[str, Path | None] = {}
    for folder in (group_folder(group), *(user / group for user in folders)):
        for path in sorted(folder.glob("*.yaml")):
            found.setdefault(path.stem, path)
    if GlobalHydra.instance().is_initialized():
        for name in GlobalHydra.instance().config_loader().get_group_options(group):
            found.setdefault(name, None)
    return dict(sorted(found.items()))


def group_options(group: str) -> list[str]:
    """The options of a config group: the packaged ones, and those a ``hydra.searchpath`` folder adds."""
    return list(group_files(group))
