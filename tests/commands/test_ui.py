"""The MLflow UI as a user sees it: mnist-exp-ui on a tiny store, driven in headless Chromium."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from helpers import free_port, serving
from mlflow import MlflowClient
from playwright.sync_api import Page, expect, sync_playwright

from mnist_exp.tracking.servers import BEST_FIRST

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("MNIST_EXP_SCREENSHOTS", "test-screenshots"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make system-packages installs it)"
    ),
]


@pytest.fixture
def ui(trained_run):
    """mnist-exp-ui on the trained run's store, stopped with Ctrl-C (SIGINT) at the end."""
    _, store = trained_run
    uri, port = f"sqlite:///{store / 'mlflow.db'}", free_port()
    command = [sys.executable, "-m", "mnist_exp.commands.ui", "--port", str(port), "--tracking-uri", uri]
    with serving(command, port) as banner:
        yield f"http://127.0.0.1:{port}", banner


@pytest.fixture
def page(request):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(30_000)
        yield page
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            SCREENSHOTS.mkdir(exist_ok=True)
            page.screenshot(path=SCREENSHOTS / f"{request.node.name}-failure.png", full_page=True)
        browser.close()


def test_runs_list_and_run_page_show_metrics_and_curves(ui, page: Page, trained_run) -> None:
    url, banner = ui
    results, store = trained_run
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    run = client.get_run(results["run_id"])
    experiment = run.info.experiment_id

    page.goto(f"{url}/#/experiments/{experiment}/runs")
    expect(page.get_by_text(run.info.run_name).first).to_be_visible()

    page.goto(f"{url}/#/experiments/{experiment}/runs/{run.info.run_id}/model-metrics")
    for metric in ("val_accuracy", "train_loss"):
        page.get_by_placeholder("Search metric charts").fill(metric)
        expect(page.get_by_text(metric, exact=True).first).to_be_visible()
        expect(page.get_by_text(f"{run.info.run_name} ({metric})").first).to_be_visible()  # a per-epoch line chart

    page.goto(f"{url}/#/experiments/{experiment}/runs/{run.info.run_id}/artifacts")
    page.get_by_text("plots", exact=True).first.click()
    page.get_by_text("learning_curves.png", exact=True).first.click()
    expect(page.get_by_text("plots/learning_curves.png", exact=True)).to_be_visible()
    # The preview shows the figure itself: a loaded image of the 10x4-inch, 100-dpi curves.
    page.wait_for_function("() => [...document.images].some(i => i.complete && i.naturalWidth === 1000)")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "run-artifacts.png", full_page=True)
    print(f"{banner}; screenshot {SCREENSHOTS / 'run-artifacts.png'}")


def test_the_ui_opens_on_the_training_runs_of_the_newest_experiment(ui, page: Page, trained_run) -> None:
    _, banner = ui
    results, store = trained_run
    run = MlflowClient(f"sqlite:///{store / 'mlflow.db'}").get_run(results["run_id"])
    url = banner.split()[0]
    assert url.endswith(f"#/experiments/{run.info.experiment_id}/runs?workflowType=machine_learning&{BEST_FIRST}")
    page.goto(url)
    expect(page.get_by_text(run.info.run_name).first).to_be_visible()  # the runs table, with the run
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    expect(page.get_by_text("Sort: test_accuracy")).to_be_visible()
    navigation = page.get_by_role("navigation")  # the model-training view's, not GenAI's (Overview, Sessions)
    expect(navigation.get_by_role("link", name="Models")).to_be_visible()
    expect(navigation.get_by_role("link", name="Overview")).to_have_count(0)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "first-screen.png")
