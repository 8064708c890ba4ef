"""The schema of every config group, checked before any data is loaded or any run is created.

Types and ranges are declared with pydantic; each problem is reported with its
dotted config key, the bad value and what is allowed, all at once.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from mnist_exp.errors import ConfigError
from mnist_exp.layout import project_root
from mnist_exp.tracking.params import flatten

PositiveInt = Annotated[int, Field(ge=1)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


FIX = "change the value on the command line or in its YAML file (mnist-exp --cfg job shows the composed config)"


# A field's mark that it says where or how a run is recorded or computed, not what it computes:
# the config hash (which runs count as "the same config") leaves it out.
NOT_HASHED = {"hashed": False}


class Strict(BaseModel):
    """Unknown keys are errors, so a misspelt key in a YAML file is caught too."""

    model_config = ConfigDict(extra="forbid")


def accepted_arguments(target: Callable[..., Any]) -> set[str]:
    """The keyword arguments ``target`` takes; a class's include those its bases take through ``**kwargs``."""
    accepted: set[str] = set()
    functions = (
        [c.__init__ for c in inspect.getmro(target) if "__init__" in vars(c)] if inspect.isclass(target) else [target]
    )
    for function in functions:
        parameters = inspect.signature(function).parameters.values()
        accepted |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return accepted - {"self"}


IMPORT_TARGETS = "import_targets"  # validation context: import each _target_ and check its arguments


class Target(BaseModel):
    """A node Hydra builds: ``_target_`` names a callable; the other keys must be arguments it takes."""

    model_config = ConfigDict(extra="allow")
    target: str = Field(alias="_target_", pattern=r"^[A-Za-z_][\w.]*$")
    partial: bool = Field(alias="_partial_", default=False)

    @model_validator(mode="after")
    def arguments_of_the_target(self, info: ValidationInfo) -> Target:
        if not (info.context or {}).get(IMPORT_TARGETS):
            return self
        try:
            target = get_object(self.target)
        except Exception as exc:  # Hydra wraps whatever the import raised
            raise ValueError(f"_target_ {self.target!r} cannot be imported ({exc.__cause__ or exc})") from exc
        unknown = sorted(set(self.model_extra or {}) - accepted_arguments(target))
        if unknown:
            raise ValueError(
                f"{self.target} takes no argument {', '.join(unknown)}; it takes "
                f"{', '.join(sorted(accepted_arguments(target)))}"
            )
        return self


class IdxFile(Strict):
    filename: str
    sha256: Sha256


class IdxFiles(Strict):
    train_images: IdxFile
    train_labels: IdxFile
    test_images: IdxFile
    test_labels: IdxFile


class IdxSettings(Strict):
    """The keys an IDX dataset adds: its sizes, its four files and where to fetch them."""

    train_size: PositiveInt
    test_size: PositiveInt
    files: IdxFiles
    sources: list[dict[str, Any]] = Field(json_schema_extra=NOT_HASHED)


IDX_FORMAT = "mnist_exp.data.store.IdxFormat"


class Dataset(BaseModel):
    """What every dataset declares; its ``format`` reader's own keys beside them (``files``, ``path``, ...)."""

    model_config = ConfigDict(extra="allow")
    name: Annotated[str, Field(pattern=r"^[\w.-]+$")]
    format: Target
    image_shape: tuple[PositiveInt, PositiveInt, Literal[1, 3]]
    num_classes: Annotated[int, Field(ge=2)]
    class_names: list[str]
    cache_dir: str = Field(json_schema_extra=NOT_HASHED)
    predict_as: Literal["digit", "fit"] = "fit"

    @model_validator(mode="after")
    def one_name_per_class(self) -> Dataset:
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} names for num_classes={self.num_classes}")
        return self

    @model_validator(mode="after")
    def digits_are_28_by_28(self) -> Dataset:
        if self.predict_as == "digit" and self.image_shape != (28, 28, 1):
            raise ValueError(f"predict_as=digit makes 28x28x1 inputs; image_shape is {list(self.image_shape)}")
        return self


class LayerSpec(BaseModel):
    """A Keras layer: ``_target_`` and its keyword arguments (checked by building it)."""

    model_config = ConfigDict(extra="allow")
    target: str = Field(alias="_target_", pattern=r"^[\w.]+$")


# The two forms of ``model.loss``: a Keras loss by name, or a node that builds one (label_smoothing and such).
# Each value is checked as one form only; the form's tag is left out of the key an error names.
BY_NAME, BY_NODE = "<by name>", "<by node>"
Loss = Annotated[
    Annotated[str, Tag(BY_NAME)] | Annotated[Target, Tag(BY_NODE)],
    Discriminator(lambda value: BY_NODE if isinstance(value, dict) else BY_NAME),
]


class Model(Strict):
    name: str
    layers: dict[str, LayerSpec | None]  # null: the layer is left out (an overlay's way to remove one)
    output: LayerSpec
    loss: Loss


class Optimizer(Target):
    """A Keras optimizer class, built when the run knows its learning-rate schedule."""

    partial: Literal[True] = Field(alias="_partial_")
    learning_rate: Annotated[float, Field(gt=0)]


class LrSchedule(Target):
    """A schedule function, given ``learning_rate``, ``steps_per_epoch`` and ``epochs`` by the run."""

    partial: Literal[True] = Field(alias="_partial_")
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
    threads: Annotated[int, Field(ge=0, json_schema_extra=NOT_HASHED)]
    batch_shards: Annotated[int, Field(ge=0, json_schema_extra=NOT_HASHED)]
    verbose: Literal["auto", 0, 1, 2] = Field(json_schema_extra=NOT_HASHED)
    deterministic: bool
    skip_if_done: bool = Field(json_schema_extra=NOT_HASHED)


class Tracking(Strict):
    store_dir: str
    uri: Annotated[str, Field(min_length=1)]
    files_dir: str
    artifact_location: str
    experiment_name: Annotated[str, Field(min_length=1)]
    run_name: str
    log_model: bool
    checkpoints: Literal["best", "last", "every"]
    registered_model_name: str
    tags: dict[str, str]
    runs_dir: str
    optuna_storage: str
    request_timeout_s: Annotated[float, Field(gt=0)]
    retry_s: Annotated[float, Field(ge=0)]
    heartbeat_s: Annotated[float, Field(gt=0)]
    dead_after_s: Annotated[float, Field(gt=0)]
    system_metrics: bool
    system_metrics_s: Annotated[float, Field(gt=0)]

    @model_validator(mode="after")
    def files_beside_the_store(self) -> Tracking:
        """A SQLite store named by its URI keeps its files beside it: a store_dir set elsewhere would split them."""
        store_dir, files_dir = Path(self.store_dir).expanduser().resolve(), Path(self.files_dir).expanduser().resolve()
        if not self.uri.startswith("sqlite:") or store_dir in (files_dir, project_root() / "mlruns"):
            return self
        raise ValueError(
            f"tracking.store_dir={self.store_dir} but the store {self.uri} (tracking.uri or MLFLOW_TRACKING_URI) "
            f"is in {files_dir}, where its artifacts and run folders go; drop tracking.store_dir, or point both "
            "at one folder"
        )

    @model_validator(mode="after")
    def heartbeat_within_the_limit(self) -> Tracking:
        if self.dead_after_s <= 2 * self.heartbeat_s:
            raise ValueError(
                f"tracking.dead_after_s={self.dead_after_s} must be more than twice tracking.heartbeat_s="
                f"{self.heartbeat_s}, or a live run could be taken for dead"
            )
        return self


class Sweep(Strict):
    resume: str | None
    stop_grace_s: Annotated[float, Field(gt=0)]
    max_failures: PositiveInt | None


class Objective(Strict):
    metric: Literal["best_val_accuracy", "test_accuracy", "test_loss"]
    direction: Literal["maximize", "minimize"]


class JobConfig(BaseModel):
    """The whole job config; other top-level keys (``hydra``, ``resume``) are not checked here."""

    model_config = ConfigDict(extra="allow")
    dataset: Dataset
    model: Model
    optimizer: Optimizer
    lr_schedule: LrSchedule
    training: Training
    tracking: Tracking = Field(json_schema_extra=NOT_HASHED)
    objective: Objective
    resume: str | None = Field(default=None, json_schema_extra=NOT_HASHED)
    sweep: Sweep = Field(json_schema_extra=NOT_HASHED)

    @model_validator(mode="after")
    def warmup_within_training(self) -> JobConfig:
        if self.lr_schedule.warmup_epochs >= self.training.epochs:
            raise ValueError(
                f"lr_schedule.warmup_epochs={self.lr_schedule.warmup_epochs} must be less than "
                f"training.epochs={self.training.epochs}"
            )
        return self

    @model_validator(mode="after")
    def shards_within_batch(self) -> JobConfig:
        shards, batch_size = self.training.batch_shards, self.training.batch_size
        if shards > batch_size:
            raise ValueError(
                f"training.batch_shards={shards} is more than training.batch_size={batch_size}; "
                f"set it to at most {batch_size}, or 0 for one per thread"
            )
        return self


def not_hashed_keys(model: type[BaseModel] = JobConfig, prefix: str = "") -> tuple[str, ...]:
    """The dotted keys whose fields are marked ``NOT_HASHED``, found through the nested models.

    An IDX dataset's own keys (``IdxSettings``) sit beside the dataset's.
    """
    keys: list[str] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        if field.json_schema_extra == NOT_HASHED:
            keys.append(key)
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            keys += not_hashed_keys(field.annotation, f"{key}.")
    if model is JobConfig:
        keys += not_hashed_keys(IdxSettings, "dataset.")
    return tuple(keys)


# Keys that say where or how a run is recorded, not what it computes: marked so above.
NOT_IN_CONFIG_HASH = not_hashed_keys()


def config_hash(cfg: DictConfig) -> str:
    """A digest of everything in the config that changes what a run computes: which runs count as the same."""
    flat = flatten(OmegaConf.to_container(cfg, resolve=True))
    kept = {k: v for k, v in flat.items() if not any(k == p or k.startswith(f"{p}.") for p in NOT_IN_CONFIG_HASH)}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"] if part not in (BY_NAME, BY_NODE))
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key; remove it or fix its spelling"
    if error["type"] == "value_error":  # a rule across fields; its message names them and their values
        message = error["msg"].removeprefix("Value error, ")
        return f"{key}: {message}" if key else message
    return f"{key}: {error['msg']} (got {error['input']!r})"


def check(container: Any, import_targets: bool) -> list[str]:
    """The problems of a resolved config, each with its dotted key."""
    try:
        JobConfig.model_validate(container, context={IMPORT_TARGETS: import_targets})
    except ValidationError as exc:
        return [describe(error) for error in exc.errors()]
    return []


def idx_problems(container: Any) -> list[str]:
    """The problems of an IDX dataset's own keys (sizes, files, sources)."""
    dataset = container.get("dataset") if isinstance(container, dict) else None
    if not isinstance(dataset, dict) or (dataset.get("format") or {}).get("_target_") != IDX_FORMAT:
        return []
    known = set(Dataset.model_fields) | {"format"}
    try:
        IdxSettings.model_validate({k: v for k, v in dataset.items() if k not in known})
    except ValidationError as exc:
        return [describe(error | {"loc": ("dataset", *error["loc"])}) for error in exc.errors()]
    return []


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError listing every value of ``cfg`` that breaks the schema."""
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except Exception as exc:  # an interpolation that cannot resolve
        raise ConfigError(f"config cannot be resolved: {exc}") from exc
    problems = check(container, import_targets=False) + idx_problems(container)  # in milliseconds
    if not problems:
        problems = check(container, import_targets=True)  # then each target's arguments (imports Keras)
    if len(problems) == 1:
        raise ConfigError(f"invalid config: {problems[0]}. Fix: {FIX}")
    if problems:
        raise ConfigError(f"invalid config, {len(problems)} problems:\n  " + "\n  ".join(problems) + f"\nFix: {FIX}")
