"""One GPU per sweep worker: each live process claims a different device, and a dead one's device is free again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mnist_exp.cluster import gpus

CLAIMER = """
import sys, time
from pathlib import Path
from mnist_exp.cluster.gpus import claim
print(claim(sys.argv[1].split(","), Path(sys.argv[2])), flush=True)
time.sleep(float(sys.argv[3]))
"""


def claimer(devices: list[str], folder: Path, hold_s: float) -> subprocess.Popen:
    command = [sys.executable, "-c", CLAIMER, ",".join(devices), str(folder), str(hold_s)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def test_workers_claim_different_gpus_and_a_dead_workers_gpu_is_free_again(tmp_path: Path) -> None:
    devices = ["0", "1"]
    first, second = claimer(devices, tmp_path, 30), claimer(devices, tmp_path, 30)
    first_gpu, second_gpu = first.stdout.readline().strip(), second.stdout.readline().strip()
    assert sorted([first_gpu, second_gpu]) == devices
    third = claimer(devices, tmp_path, 0)
    assert third.stdout.readline().strip() == "None"  # both held: no GPU rather than a shared one
    first.kill()
    first.wait()
    fourth = claimer(devices, tmp_path, 0)
    assert fourth.stdout.readline().strip() == first_gpu  # the dead worker's lock went with it
    second.kill()
    for process in (second, third, fourth):
        process.wait()


def test_a_process_keeps_its_gpu_and_a_users_choice_is_left_alone(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(gpus, "_held", [])
    assert gpus.claim(["3", "5"], tmp_path) == "3"
    assert gpus.claim(["3", "5"], tmp_path) == "3"  # claimed once per process
    monkeypatch.setenv(gpus.VISIBLE_ENV, "7")
    assert gpus.one_gpu_per_worker("sweep") is None
    for handle in gpus._held:
        handle.close()
