"""A run's checkpoint on disk: what it records of its model file, and which copy a resume trusts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnist_exp.errors import ConfigError
from mnist_exp.tracking.checkpoints import DamagedCheckpointError, EpochCheckpoint, fingerprint, intact_checkpoint
from mnist_exp.tracking.store import open_store


def write_checkpoint(folder: Path, model: bytes = b"weights " * 500, epochs: int = 2, recorded: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.keras").write_bytes(model)
    state = {"epochs_done": epochs, "history": {"epoch_time_s": [1.0] * epochs}}
    (folder / "state.json").write_text(json.dumps(state | (fingerprint(folder / "model.keras") if recorded else {})))


def test_an_intact_checkpoint_loads_and_a_damaged_one_says_what_is_wrong(tmp_path) -> None:
    write_checkpoint(tmp_path)
    model, epochs, history = EpochCheckpoint.load(tmp_path)
    assert (model, epochs, history) == (tmp_path / "model.keras", 2, {"epoch_time_s": [1.0, 1.0]})
    (tmp_path / "model.keras").write_bytes(b"weights " * 499)
    with pytest.raises(DamagedCheckpointError, match=r"model\.keras is not the file state\.json recorded"):
        EpochCheckpoint.load(tmp_path)
    (tmp_path / "state.json").write_text('{"epochs_done": 2, "hist')
    with pytest.raises(DamagedCheckpointError, match=r"state.json cannot be read \(JSONDecodeError\)"):
        EpochCheckpoint.load(tmp_path)
    assert EpochCheckpoint.load(tmp_path / "none") == (None, 0, {})


def test_a_checkpoint_written_before_fingerprints_still_loads(tmp_path) -> None:
    write_checkpoint(tmp_path, recorded=False)
    assert EpochCheckpoint.load(tmp_path)[1] == 2


def test_a_damaged_local_checkpoint_is_set_aside_for_the_stores_copy_or_refused(tmp_path) -> None:
    client = open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("e", artifact_location=str(tmp_path / "art"))).info.run_id
    stored = tmp_path / "stored" / "checkpoint"
    write_checkpoint(stored, epochs=3)
    for name in ("model.keras", "state.json"):
        client.log_artifact(run_id, str(stored / name), "checkpoint")
    local = tmp_path / "run" / "checkpoint"
    write_checkpoint(local, epochs=4)
    (local / "model.keras").write_bytes(b"cut")
    model, epochs, _ = intact_checkpoint(client, run_id, local)
    assert (model, epochs) == (local / "model.keras", 3)  # the store's copy, in the local folder's place
    assert (local.parent / "checkpoint.damaged" / "model.keras").read_bytes() == b"cut"

    other = client.create_run(client.get_run(run_id).info.experiment_id).info.run_id  # nothing in the store
    write_checkpoint(tmp_path / "other" / "checkpoint")
    (tmp_path / "other" / "checkpoint" / "state.json").write_text("{")
    with pytest.raises(ConfigError, match=r"checkpoint is damaged .* and the store has no intact copy\. Fix: move"):
        intact_checkpoint(client, other, tmp_path / "other" / "checkpoint")
