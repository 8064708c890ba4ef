"""Every name mnist-exp writes to or reads from MLflow, defined once."""

from __future__ import annotations

# Environment variables.
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"  # MLflow's own; the config reads it first
PARENT_ENV = "MNIST_EXP_SWEEP_PARENT_RUN_ID"  # a sweep's parent run, passed to its jobs by every launcher
SWEPT_ENV = "MNIST_EXP_SWEPT_KEYS"  # the config keys a sweep varies (comma-separated), for its jobs' run names

# Run tags.
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's: nests a sweep's jobs under its parent
GIT_COMMIT_MLFLOW_TAG = "mlflow.source.git.commit"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"  # the UI opens a custom_model_development experiment on its runs
OVERRIDES_TAG = "hydra.overrides"
CONFIG_HASH_TAG = "config.hash"
GIT_COMMIT_TAG = "git.commit"
GIT_DIRTY_TAG = "git.dirty"
DATASET_NAME_TAG = "dataset.name"
DATASET_DIGEST_TAG = "dataset.digest"
SEED_TAG = "seed"
VERSION_TAG_PREFIX = "version."
PRECISION_REASON_TAG = "precision.reason"
MACHINE_TAG = "machine"
OWNER_TAG = "run.owner"  # the process running it: host, PID namespace, pid, start time
HEARTBEAT_TAG = "run.heartbeat"  # when its process last said it lives (ms since the epoch)
PROCESS_DIED = "process died"  # the stop reason of a run whose process went away without a word
STOP_REASON_TAG = "stop.reason"  # why a KILLED run stopped: Ctrl-C, SIGTERM, preempted, time limit, cancelled
ERROR_TAG = "error"  # a failed run's error; a divergence adds error.epoch and error.message
SWEEP_JOB_TAG = "sweep.job"
SWEEP_ROLE_TAG = "sweep.role"
SWEEP_PARENT_ROLE = "parent"
SWEEP_DIR_TAG = "sweep.dir"
SWEEP_OVERRIDES_TAG = "sweep.overrides"
SWEEP_LOST_TAG = "sweep.lost_jobs"  # on a sweep's parent: the jobs that ended without a result, and why
BEST_RUN_ID_TAG = "best_run_id"
BEST_RUN_NAME_TAG = "best_run_name"
MIGRATED_FROM_TAG = "migrated_from"
REPRODUCED_FROM_TAG = "reproduced_from"
MODEL_RUN_ID_TAG = "run_id"  # on a registered model version

# Logged-model tags.
MODEL_EPOCH_TAG = "epoch"  # the epoch whose weights a logged model holds (also its step)
RUN_MODEL_TAG = "run_model"  # "true" on the model a run stands for (the best epoch's, by tracking.checkpoints)

# Experiment tags.
SAVED_VIEW_TAG_PREFIX = "mlflow.sharedViewState."  # the MLflow UI's saved runs-table views: one tag each
RUNS_VIEW = "mnist-exp"  # mnist-exp's view of an experiment's runs, which mnist-exp-ui opens on

# Params beside the config's own.
PRECISION_PARAM = "precision"  # the dtype policy the run computed in (training.precision may say auto)
NUM_PARAMS_PARAM = "model.num_params"

# Per-epoch metrics (step = 1-based epoch).
TRAIN_LOSS = "train_loss"
TRAIN_ACCURACY = "train_accuracy"
VAL_LOSS = "val_loss"
VAL_ACCURACY = "val_accuracy"
EPOCH_TIME = "epoch_time_s"  # an epoch's wall time, as a metric and in the checkpoint's history
EPOCH_TRAIN_TIME = "epoch_train_time_s"  # its training part, before validation (in the checkpoint's history only)
SAMPLES_PER_S = "train_samples_per_s"
LEARNING_RATE = "learning_rate"
EPOCH_METRICS = (TRAIN_LOSS, TRAIN_ACCURACY, VAL_LOSS, VAL_ACCURACY)

# A run's final metrics.
TEST_LOSS = "test_loss"
TEST_ACCURACY = "test_accuracy"
BEST_VAL_ACCURACY = "best_val_accuracy"
RUN_TRAIN_TIME = "train_time_s"
EPOCH_TIME_MEAN = "epoch_time_s_mean"
SAMPLES_PER_S_MEAN = "train_samples_per_s_mean"
FINAL_METRICS = (TEST_LOSS, TEST_ACCURACY)

# A sweep parent's metrics.
JOBS_FINISHED = "jobs_finished"
JOBS_FAILED = "jobs_failed"

# Artifacts.
CONFIG_FILE = "config.yaml"  # the resolved config every run logs
MODEL_SUMMARY_FILE = "model_summary.txt"
LEARNING_CURVES_FILE = "plots/learning_curves.png"
CONFUSION_MATRIX_FILE = "plots/confusion_matrix.png"
ERROR_FILE = "error.txt"
CHECKPOINT_DIR = "checkpoint"  # a stopped run's last checkpoint
MODEL_NAME = "model"  # the logged model's name
SUMMARY_DIR = "summary"  # a sweep parent's summary files
SUMMARY_FILES = ("summary.md", "summary.csv", "comparison.png")

# Files on disk.
SWEEP_RECORD = "mlflow_sweep.json"  # in a sweep's folder: its parent run and store
JOURNAL = "journal.jsonl"  # in a run's folder: writes the store has not taken
STAGED = "files"  # in a run's folder: artifacts as they will be uploaded
RUN_INFO = "run.json"  # in a run's folder: its run id and store
CHECKPOINT_MODEL = "model.keras"
CHECKPOINT_STATE = "state.json"
CHECKPOINT_BEST = "best.weights.h5"  # the best epoch's weights so far, beside the last checkpoint

# An Optuna search: the study and trial a sweep job reports to (set per job by the sweeper).
OPTUNA_STORAGE_ENV = "MNIST_EXP_OPTUNA_STORAGE"
OPTUNA_STUDY_ENV = "MNIST_EXP_OPTUNA_STUDY"
OPTUNA_TRIAL_ENV = "MNIST_EXP_OPTUNA_TRIAL"  # the trial's number in its study
PRUNED_TAG = "sweep.pruned"  # "true" on a job its pruner stopped early
PRUNED_EPOCH_TAG = "sweep.pruned_epoch"  # the last epoch it trained
PRUNED_EPOCH_ATTR = "pruned_epoch"  # the same, as the Optuna trial's user attribute
STUDY_TAG = "sweep.study"  # on a sweep's parent run: the Optuna study and its storage
PARALLEL_COORDINATES_FILE = "parallel_coordinates.png"
IMPORTANCES_FILE = "param_importances.png"  # an Optuna sweep's, as optuna.visualization draws them:
OPTIMIZATION_HISTORY_FILE = "optimization_history.png"
SLICE_FILE = "slice.png"
COMPARISON_FILES = ("comparison.md", "comparison_best.png")  # mnist-exp-report A B
