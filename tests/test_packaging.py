"""Which TensorFlow an install brings: the CPU build with [cpu], the CUDA build alone with [gpu], never both."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TENSORFLOWS = {"tensorflow", "tensorflow-cpu"}


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=~!; ]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def test_tensorflow_comes_from_one_extra_each_and_not_from_the_base() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert not requirement_names(project["dependencies"]) & TENSORFLOWS
    assert requirement_names(extras["cpu"]) & TENSORFLOWS == {"tensorflow-cpu"}
    assert requirement_names(extras["gpu"]) & TENSORFLOWS == {"tensorflow"}
    assert "tensorflow[and-cuda]" in extras["gpu"][0]


@pytest.mark.slow
def test_the_gpu_install_resolves_to_tensorflows_cuda_build_alone(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
               "--report", str(report), f"{ROOT}[gpu]"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert names & TENSORFLOWS == {"tensorflow"}
    assert any(name.startswith("nvidia-cudnn") for name in names)  # the and-cuda libraries come with it
