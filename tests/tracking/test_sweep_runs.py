"""A sweep's runs in MLflow (``tracking/sweeps``): failed jobs counted, lost jobs recorded, dead ones ended.

The sweeps themselves run as Hydra multiruns in ``test_sweeps.py`` (the full suite); these are the
store-side rules, fast.
"""

from __future__ import annotations

from mlflow import MlflowClient
from omegaconf import OmegaConf

from mnist_exp.tracking import names, sweeps


def sweep_with_jobs(client: MlflowClient, statuses: list[str]) -> str:
    experiment = client.create_experiment("sweep")
    parent = client.create_run(experiment, tags={names.SWEEP_ROLE_TAG: names.SWEEP_PARENT_ROLE}).info.run_id
    for job, status in enumerate(statuses):
        tags = {names.PARENT_RUN_TAG: parent, names.SWEEP_JOB_TAG: str(job)}
        if status == "FAILED":
            tags[names.ERROR_TAG] = f"ValueError: job {job} broke"
        run = client.create_run(experiment, tags=tags).info.run_id
        if status != "RUNNING":
            client.set_terminated(run, status)
    return parent


def test_a_sweep_stops_launching_at_max_failures_and_names_the_first(store_uri) -> None:
    client = MlflowClient(store_uri)
    parent = sweep_with_jobs(client, ["FINISHED", "FAILED", "FAILED"])
    assert sweeps.failed_enough(client, parent, None) is None  # no limit: never
    assert sweeps.failed_enough(client, parent, 3) is None
    why = sweeps.failed_enough(client, parent, 2)
    assert why is not None and "after 2 failed (sweep.max_failures=2)" in why and "job 1: ValueError" in why


def test_a_lost_job_is_recorded_on_its_run_and_listed_on_the_parent(store_uri) -> None:
    client = MlflowClient(store_uri)
    parent = sweep_with_jobs(client, ["RUNNING"])
    config = OmegaConf.create({"tracking": {"uri": store_uri, "run_name": "job"}})
    sweeps.record_job_without_result(config, parent, 0, [], "SLURM job 7 ended without a result (CANCELLED)")
    sweeps.record_job_without_result(config, parent, 1, ["x=1"], "never scheduled")
    (running,) = [r for r in client.search_runs([client.get_run(parent).info.experiment_id])
                  if r.data.tags.get(names.SWEEP_JOB_TAG) == "0"]  # fmt: skip
    assert running.info.status == "KILLED" and "CANCELLED" in running.data.tags[names.STOP_REASON_TAG]
    lost = client.get_run(parent).data.tags[names.SWEEP_LOST_TAG]
    assert lost == "job 0: SLURM job 7 ended without a result (CANCELLED); job 1: never scheduled"
    never = sweeps.runs.job_run(client, parent, "1")
    assert never is not None and never.info.status == "FAILED"  # a job without a run gets one, FAILED


def test_jobs_left_running_when_the_sweep_ends_are_ended_killed(store_uri) -> None:
    client = MlflowClient(store_uri)
    parent = sweep_with_jobs(client, ["RUNNING", "FINISHED"])
    sweeps.end_running_jobs(OmegaConf.create({"tracking": {"uri": store_uri}}), parent, "the sweep was stopped")
    statuses = sorted(r.info.status for r in sweeps.reports.children(client, parent))
    assert statuses == ["FINISHED", "KILLED"]
