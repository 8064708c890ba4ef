"""The MLflow UI as a user sees it: mnist-exp-ui on a tiny store, driven in headless Chromium."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import as_hydra_job, free_port, serving
from mlflow import MlflowClient
from playwright.sync_api import Page, expect, sync_playwright

from mnist_exp.tracking import names
from mnist_exp.tracking.views import MODEL_TRAINING_VIEW, VIEW_KEY_PARAM, VIEW_TAG

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
    pytest.mark.xdist_group("ui"),  # one set of runs and one UI for the module's tests, on one worker
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make system-packages installs it)"
    ),
]


SEEDS_AND_PRECISIONS = [(seed, precision) for seed in (1, 2, 3) for precision in ("float32", "auto")]


@pytest.fixture(scope="module")
def six_runs(tmp_path_factory: pytest.TempPathFactory, synthetic: list[str]) -> Path:
    """Six one-epoch runs of one recipe, differing by seed and precision, started as Hydra jobs; their store."""
    from mnist_exp.train import train

    store = tmp_path_factory.mktemp("six") / "mlruns"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    for seed, precision in SEEDS_AND_PRECISIONS:
        overrides = [f"training.seed={seed}", f"training.precision={precision}", *synthetic, "training.epochs=1",
                     f"tracking.store_dir={store}", "tracking.log_model=false",
                     "tracking.system_metrics_s=0.5"]  # fmt: skip
        with as_hydra_job(overrides) as cfg:
            train(cfg)
    return store


def mnist_exp_ui(store: Path) -> list[str]:
    uri = f"sqlite:///{store / 'mlflow.db'}"
    return [sys.executable, "-m", "mnist_exp.commands.ui", "--tracking-uri", uri]


@pytest.fixture(scope="module")
def ui(six_runs: Path) -> Iterator[tuple[str, str]]:
    """mnist-exp-ui on the six runs' store (its address and banner line), stopped with Ctrl-C (SIGINT) at the end."""
    port = free_port()
    with serving([*mnist_exp_ui(six_runs), "--port", str(port)], port) as banner:
        yield f"http://127.0.0.1:{port}", banner


@pytest.fixture
def page(request):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(30_000)
        expect.set_options(timeout=30_000)  # the same for expect (5 s by default): a loaded machine drew charts later
        yield page
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            SCREENSHOTS.mkdir(exist_ok=True)
            page.screenshot(path=SCREENSHOTS / f"{request.node.name}-failure.png", full_page=True)
        browser.close()


def test_runs_list_and_run_page_show_metrics_and_curves(ui, page: Page, six_runs: Path) -> None:
    url, banner = ui
    client = MlflowClient(f"sqlite:///{six_runs / 'mlflow.db'}")
    run = client.search_runs([e.experiment_id for e in client.search_experiments()])[0]
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


def test_the_first_screen_compares_the_runs_without_a_click(ui, six_runs: Path, page: Page) -> None:
    """At 1280x800, the UI opens on mnist-exp's view: every run's distinct name and test accuracy in sight."""
    client = MlflowClient(f"sqlite:///{six_runs / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    starts = sorted(run.info.run_name.split(",train_size")[0] for run in runs)  # then the tiny dataset's overrides
    assert starts == sorted(f"cnn-mnist-adam seed={s},precision={p}" for s, p in SEEDS_AND_PRECISIONS)
    _, banner = ui
    url = banner.split()[0]
    assert url.endswith(f"runs?workflowType=machine_learning&{VIEW_KEY_PARAM}={names.RUNS_VIEW}")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(url)
    expect(page.get_by_text("Sort: best_val_accuracy")).to_be_visible()
    for run in runs:
        row = page.locator(".ag-row").filter(has=page.get_by_text(run.info.run_name, exact=True)).first
        expect(row).to_be_visible()
        cell = page.locator(
            f'.ag-row[row-id="{row.get_attribute("row-id")}"] [col-id="metrics.`{names.TEST_ACCURACY}`"]'
        )
        expect(cell).to_be_visible()
        assert float(cell.inner_text()) == pytest.approx(run.data.metrics[names.TEST_ACCURACY], abs=1e-3)
        box = cell.bounding_box()
        assert box["x"] + box["width"] <= 1280 and box["y"] + box["height"] <= 800, box  # on the first screen
    view = json.loads(client.get_experiment(runs[0].info.experiment_id).tags[VIEW_TAG])
    columns = json.loads(view["state"])["selectedColumns"]  # the params that differ are the view's too
    assert {"params.`training.seed`", "params.`training.precision`"} <= set(columns), columns
    navigation = page.get_by_role("navigation")  # the model-training view's, not GenAI's (Overview, Sessions)
    expect(navigation.get_by_role("link", name="Models")).to_be_visible()
    expect(navigation.get_by_role("link", name="Overview")).to_have_count(0)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "first-screen.png")

    run = runs[0]  # its machine's use, sampled while it trained, charted by the UI
    run_page = f"#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}/system-metrics?{MODEL_TRAINING_VIEW}"
    page.goto(url.split("#")[0] + run_page)
    expect(page.get_by_text("cpu_utilization_percentage").first).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible()  # drawn, not loading
    page.screenshot(path=SCREENSHOTS / "system-metrics.png")
