"""Where the configs live, the resolvers they use, and composing them outside @hydra.main."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mnist_exp.display import short

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "conf"
CONFIG_NAME = "config"


def register_resolvers() -> None:
    """Register ``${project_root:}`` (the folder that holds conf/ and mlruns/) and ``${short:value}``."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("short"):
        OmegaConf.register_new_resolver("short", short)
    if not OmegaConf.has_resolver("catalog"):
        OmegaConf.register_new_resolver("catalog", catalog)


def compose(overrides: Sequence[str] = (), config_name: str = CONFIG_NAME) -> DictConfig:
    """Compose a project config (by default the experiment's) with Hydra's compose API."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose(config_name, overrides=list(overrides))


def description(path: Path) -> str:
    """A config file's one-line description: its first comment line that is not a ``@package`` directive."""
    for line in path.read_text().splitlines():
        if line.startswith("#") and not line.startswith("# @package"):
            return line.lstrip("# ").strip()
        if line.strip() and not line.startswith("#"):
            break
    return ""


def catalog(group: str) -> str:
    """Each option of a config group with its description, one per line (for ``mnist-exp --help``)."""
    options = group_options(group)
    width = max(map(len, options), default=0)
    return "\n".join(f"  {name:<{width}}  {description(CONFIG_DIR / group / f'{name}.yaml')}" for name in options)


def group_options(group: str) -> list[str]:
    """The options of a config group (the YAML files in its folder), e.g. the dataset names."""
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))
