"""The schema of every config group, checked before any data is loaded or any run is created.

Types and ranges are declared with pydantic; each problem is reported with its
dotted config key, the bad value and what is allowed, all at once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mnist_exp.errors import UserError

PositiveInt = Annotated[int, Field(ge=1)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


FIX = "change the value on the command line or in its YAML file (mnist-exp --cfg job shows the composed config)"


class ConfigError(UserError, ValueError):
    """A config value is out of its type or range; the message names each field and the fix."""


class Strict(BaseModel):
    """Unknown keys are errors, so a misspelt key in a YAML file is caught too."""

    model_config = ConfigDict(extra="forbid")


class IdxFile(Strict):
    filename: str
    sha256: Sha256


class DatasetFiles(Strict):
    train_images: IdxFile
    train_labels: IdxFile
    test_images: IdxFile
    test_labels: IdxFile


class Dataset(Strict):
    name: str
    image_shape: tuple[PositiveInt, PositiveInt, PositiveInt]
    num_classes: Annotated[int, Field(ge=2)]
    class_names: list[str]
    train_size: PositiveInt
    test_size: PositiveInt
    cache_dir: str
    files: DatasetFiles
    sources: list[dict[str, Any]]

    @model_validator(mode="after")
    def one_name_per_class(self) -> Dataset:
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} names for num_classes={self.num_classes}")
        return self


class LayerSpec(BaseModel):
    """A Keras layer: ``_target_`` and its keyword arguments (checked by building it)."""

    model_config = ConfigDict(extra="allow")
    target: str = Field(alias="_target_", pattern=r"^[\w.]+$")


class Model(Strict):
    name: str
    layers: dict[str, LayerSpec]
    output: LayerSpec
    loss: str


class Optimizer(BaseModel):
    """Known optimizers by name; their other settings are checked by building the optimizer."""

    model_config = ConfigDict(extra="allow")
    target: str = Field(alias="_target_")
    name: Literal["adam", "sgd", "rmsprop", "adamw"]
    lr: Annotated[float, Field(gt=0)]


class LrSchedule(Strict):
    name: Literal["constant", "cosine"]
    warmup_epochs: Annotated[float, Field(ge=0)] = 0.0
    final_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0


class Training(Strict):
    epochs: PositiveInt
    batch_size: PositiveInt
    validation_split: Annotated[float, Field(ge=0, lt=1)]
    seed: int
    shuffle: bool
    eval_batch_size: PositiveInt
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"]
    steps_per_execution: PositiveInt
    threads: Annotated[int, Field(ge=0)]
    batch_shards: Annotated[int, Field(ge=0)]
    verbose: Literal["auto", 0, 1, 2]
    deterministic: bool
    skip_if_done: bool


class Tracking(Strict):
    store_dir: str
    uri: Annotated[str, Field(min_length=1)]
    artifact_location: str
    experiment_name: Annotated[str, Field(min_length=1)]
    run_name: str
    log_model: bool
    registered_model_name: str
    tags: dict[str, str]
    runs_dir: str
    request_timeout_s: Annotated[float, Field(gt=0)]
    retry_s: Annotated[float, Field(ge=0)]


class Objective(Strict):
    metric: Literal["best_val_accuracy", "test_accuracy", "test_loss"]
    direction: Literal["maximize", "minimize"]


class Experiment(BaseModel):
    """The whole job config; other top-level keys (``hydra``, ``resume``) are not checked here."""

    model_config = ConfigDict(extra="allow")
    dataset: Dataset
    model: Model
    optimizer: Optimizer
    lr_schedule: LrSchedule
    training: Training
    tracking: Tracking
    objective: Objective

    @model_validator(mode="after")
    def warmup_within_training(self) -> Experiment:
        if self.lr_schedule.warmup_epochs >= self.training.epochs:
            raise ValueError(
                f"lr_schedule.warmup_epochs={self.lr_schedule.warmup_epochs} must be less than "
                f"training.epochs={self.training.epochs}"
            )
        return self

    @model_validator(mode="after")
    def shards_within_batch(self) -> Experiment:
        shards, batch_size = self.training.batch_shards, self.training.batch_size
        if shards > batch_size:
            raise ValueError(
                f"training.batch_shards={shards} is more than training.batch_size={batch_size}; "
                f"set it to at most {batch_size}, or 0 for one per thread"
            )
        return self


def describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key; remove it or fix its spelling"
    if error["type"] == "value_error":  # a rule across fields; its message names them and their values
        message = error["msg"].removeprefix("Value error, ")
        return f"{key}: {message}" if key else message
    return f"{key}: {error['msg']} (got {error['input']!r})"


def validate(cfg: DictConfig, known_datasets: list[str] | None = None) -> None:
    """Raise ConfigError listing every value of ``cfg`` that breaks the schema."""
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except Exception as exc:  # an interpolation that cannot resolve
        raise ConfigError(f"config cannot be resolved: {exc}") from exc
    problems: list[str] = []
    try:
        Experiment.model_validate(container)
    except ValidationError as exc:
        problems = [describe(error) for error in exc.errors()]
    if known_datasets is not None and cfg.dataset.name not in known_datasets:
        problems.append(f"dataset.name: unknown dataset {cfg.dataset.name!r}; choose from {', '.join(known_datasets)}")
    if len(problems) == 1:
        raise ConfigError(f"invalid config: {problems[0]}. Fix: {FIX}")
    if problems:
        raise ConfigError(f"invalid config, {len(problems)} problems:\n  " + "\n  ".join(problems) + f"\nFix: {FIX}")
