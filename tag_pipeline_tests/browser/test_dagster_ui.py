"""The Dagster UI in a real browser: ``dagster dev`` on a copy of a trained project home,
driven by Playwright through the distribution's chromium (``make browser``; never
``playwright install``).

The tests run in file order on one server: the catalog lists every asset and check of the
definitions, ``catalog_job`` launched from the launchpad succeeds, and ``product_tags`` shows
the metadata of its last materialization. Screenshots go to ``TAG_PIPELINE_TEST_ARTIFACTS``
(default ``test-artifacts/browser``); with ``TAG_PIPELINE_UPDATE_DOCS=1`` the asset graph also
replaces ``docs/asset_graph.png``, the README's image.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tag_pipeline_tests.support import REPO_ROOT, ProjectHome, home_env

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("TAG_PIPELINE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("TAG_PIPELINE_TEST_ARTIFACTS",
                                REPO_ROOT / "test-artifacts" / "browser"))
DOCS_GRAPH = REPO_ROOT / "docs" / "asset_graph.png"
LOCATION = "tag_pipeline"
# Generous: on a busy 2-core machine `dagster dev` took 2.5 min to serve and catalog_job
# 1.5 min from launch to success.
SERVER_TIMEOUT_S = 300
RUN_TIMEOUT_S = 480
UI_TIMEOUT_MS = 60_000
FINAL_RUN_STATUS = re.compile(r"^(Success|Failure|Canceled)$")
WORKSPACE_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


@dataclass(frozen=True)
class DagsterUI:
    url: str
    home: ProjectHome
    log: Path


def _log_tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]


def _wait_for_location(url: str, process: subprocess.Popen, log: Path) -> None:
    """Wait until the webserver answers and the code location has loaded without error."""
    deadline = time.monotonic() + SERVER_TIMEOUT_S
    state = "webserver not answering"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster dev exited with {process.returncode}; log {log}:\n"
                        f"{_log_tail(log)}")
        try:
            urllib.request.urlopen(f"{url}/server_info", timeout=5).close()
            entries = _graphql(url, WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
            entry = next((e for e in entries if e["name"] == LOCATION), None)
            state = f"location {LOCATION}: {entry}"
            if entry and entry["loadStatus"] == "LOADED":
                loaded = entry["locationOrLoadError"] or {}
                if loaded.get("__typename") == "PythonError":
                    pytest.fail(f"{LOCATION} failed to load: {loaded['message']}")
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            state = f"webserver not answering ({exc})"
        time.sleep(1)
    pytest.fail(f"dagster dev at {url} not ready after {SERVER_TIMEOUT_S} s ({state}); "
                f"log {log}:\n{_log_tail(log)}")


def _processes_with(setting: str) -> list[int]:
    """Ids of processes whose environment holds ``setting`` (``NAME=value``)."""
    needle = setting.encode() + b"\0"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle in (proc / "environ").read_bytes() + b"\0":
                found.append(int(proc.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


def _stop(process: subprocess.Popen, dagster_home: str) -> None:
    """SIGTERM to the process group (dagster dev shuts its services down), then kill whatever
    is left, including run workers that left the group."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    for pid in _processes_with(f"DAGSTER_HOME={dagster_home}"):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


@pytest.fixture(scope="module")
def ui_home(trained_home: ProjectHome, tmp_path_factory) -> ProjectHome:
    """A private copy of the session's trained home: this module's runs must not change the
    home other tests read. It is relocated as a user would after copying a home
    (`tag-pipeline relocate`), so it reads only its own artifacts and images."""
    from tag_pipeline.lib.home import relocate

    home = tmp_path_factory.mktemp("browser") / "home"
    shutil.copytree(trained_home.home, home)
    assert relocate(home).moved
    with sqlite3.connect(home / "mlflow" / "mlflow.db") as db:
        locations = [row[0] for row in db.execute(
            "SELECT artifact_location FROM experiments WHERE artifact_location LIKE 'file:%'")]
    for uri in locations:
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(uri).path))
        assert path.is_dir(), f"MLflow artifact location {uri} of the copied home is missing"
        assert path.is_relative_to(home), f"the copied home still reads {uri}"
    env = {**trained_home.env, **home_env(home)}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "TAG_PIPELINE_DUCKDB_PATH",
                 "TAG_PIPELINE_PROFILE", "TAG_PIPELINE_LANDING_DIR"):
        env.pop(name, None)
    return ProjectHome(home=home, env=env)


@pytest.fixture(scope="module")
def dagster_ui(ui_home: ProjectHome) -> Iterator[DagsterUI]:
    """``dagster dev`` on the copied home, in its own process group, bound to 127.0.0.1."""
    url_port = _free_port()
    log = ui_home.home.parent / "dagster_dev.log"
    dagster = Path(sys.executable).parent / "dagster"
    # A background process inherits ignored SIGINT/SIGTERM; reset them so the stop works.
    command = ["env", "--default-signal=INT,QUIT,TERM", str(dagster), "dev",
               "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(url_port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=ui_home.env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{url_port}"
    try:
        _wait_for_location(url, process, log)
        yield DagsterUI(url=url, home=ui_home, log=log)
    finally:
        _stop(process, ui_home.env["DAGSTER_HOME"])
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, ARTIFACTS / "dagster_dev.log")


@pytest.fixture(scope="module")
def page(dagster_ui: DagsterUI) -> Iterator[Page]:
    """One chromium page for the module, the community dialog dismissed whenever it shows."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no chromium at {CHROMIUM}: run `make browser` (Debian's chromium) or set "
                    "TAG_PIPELINE_CHROMIUM; `playwright install` is not used")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.set_default_timeout(UI_TIMEOUT_MS)
        tab = context.new_page()
        tab.add_locator_handler(tab.get_by_role("button", name="Skip", exact=True),
                                lambda skip: skip.click())
        try:
            yield tab
        finally:
            browser.close()


def _expected_definitions() -> tuple[set[str], dict[str, set[str]], set[str]]:
    """Asset paths, checks by asset path and group names, from the definitions in process."""
    from tag_pipeline.definitions import defs

    graph = defs.get_repository_def().asset_graph
    assets = {"/".join(key.path) for key in graph.get_all_asset_keys()}
    checks: dict[str, set[str]] = {}
    for key in graph.asset_check_keys:
        checks.setdefault("/".join(key.asset_key.path), set()).add(key.name)
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys()}
    return assets, checks, groups


def _go(page: Page, path: str) -> None:
    """Client-side navigation inside the loaded app (no reload of the UI bundle per page)."""
    page.evaluate("path => { window.history.pushState({}, '', path);"
                  " window.dispatchEvent(new PopStateEvent('popstate', {state: {}})); }", path)


def _catalog_asset_links(page: Page) -> set[str]:
    """Every asset listed in the catalog; the list is virtualised, so scroll through it."""
    links = page.locator('a[href^="/assets/"]')
    expect(links.first).to_be_visible()
    seen: set[str] = set()
    idle = 0
    while idle < 3:
        hrefs = links.evaluate_all("els => els.map(e => e.getAttribute('href'))")
        names = {h.removeprefix("/assets/") for h in hrefs if re.fullmatch(r"/assets/[^?#]+", h)}
        idle = idle + 1 if names <= seen else 0
        seen |= names
        # Bringing the last rendered row into view makes the list render the next ones.
        links.last.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
    return seen


def test_catalog_lists_every_asset_and_check(page: Page, dagster_ui: DagsterUI) -> None:
    assets, checks, groups = _expected_definitions()
    page.goto(f"{dagster_ui.url}/assets")
    expect(page.locator(f'a[href="/assets/{min(assets)}"]')).to_be_visible()
    assert _catalog_asset_links(page) == assets

    for asset, names in sorted(checks.items()):
        _go(page, f"/assets/{asset}?view=checks")
        expect(page.locator(f'a[href="/assets/{asset}?view=overview"]')).to_be_visible()
        for name in sorted(names):
            expect(page.get_by_title(name, exact=True)).to_be_visible()
        expect(page.get_by_text(re.compile(r"^Checks \(\d+\)$"))).to_have_text(
            f"Checks ({len(names)})")

    # The lineage graph with every group expanded: the screenshot for the README.
    page.goto(f"{dagster_ui.url}/asset-groups")
    for group in groups:
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    page.get_by_role("button", name="settings", exact=True).click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.keyboard.press("Escape")
    expect(page.get_by_role("menuitem", name="Collapse all groups")).to_be_hidden()
    page.wait_for_timeout(1500)  # the graph animates its zoom-to-fit
    shot = ARTIFACTS / "asset_graph.png"
    page.screenshot(path=shot)
    if os.environ.get("TAG_PIPELINE_UPDATE_DOCS") == "1":  # refresh the README's image on demand
        shutil.copy(shot, DOCS_GRAPH)


def test_catalog_job_launched_from_the_launchpad_succeeds(page: Page,
                                                          dagster_ui: DagsterUI) -> None:
    page.goto(f"{dagster_ui.url}/locations/{LOCATION}/jobs/catalog_job/playground")
    page.get_by_role("button", name="Launch run").click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    run_id = page.url.rsplit("/", 1)[-1].split("?")[0]
    expect(page.get_by_text("Run of catalog_job")).to_be_visible()
    status = page.get_by_text(FINAL_RUN_STATUS).first
    try:
        expect(status).to_be_visible(timeout=RUN_TIMEOUT_S * 1000)
    except AssertionError:
        page.screenshot(path=ARTIFACTS / "run_timeout.png")
        raise AssertionError(f"run {run_id} of catalog_job not finished after {RUN_TIMEOUT_S} s; "
                             f"see {ARTIFACTS}/run_timeout.png and {dagster_ui.log}:\n"
                             f"{_log_tail(dagster_ui.log)}") from None
    if status.inner_text() != "Success":
        page.screenshot(path=ARTIFACTS / "run_failure.png")
        pytest.fail(f"run {run_id} of catalog_job ended with {status.inner_text()}; see "
                    f"{ARTIFACTS}/run_failure.png and {dagster_ui.url}/runs/{run_id}")
    expect(page.get_by_text("RUN_SUCCESS").first).to_be_visible()
    page.screenshot(path=ARTIFACTS / "run_success.png")


def test_product_tags_page_shows_its_last_materialization(page: Page,
                                                          dagster_ui: DagsterUI) -> None:
    warehouse = dagster_ui.home.home / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows, products = con.sql(
            "SELECT count(*), count(DISTINCT product_id) FROM product_tags").fetchone()
    page.goto(f"{dagster_ui.url}/assets/product_tags")
    expect(page.get_by_text("Metadata", exact=True)).to_be_visible()

    def value_of(key: str):
        return page.get_by_role("row").filter(
            has=page.get_by_role("cell", name=key, exact=True)).get_by_role("cell").last

    expect(page.get_by_text(f"{rows:,}", exact=True)).to_be_visible()  # the Row count stat
    expect(value_of("products_tagged")).to_have_text(str(products))
    expect(value_of("refiner_applied")).to_have_text(re.compile(r"^(true|false)$"))
    expect(value_of("tagger_version")).to_have_text(re.compile(r"^\d+$"))
    value_of("preview").get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("columnheader", name="product_id")).to_be_visible()
    expect(dialog.get_by_role("columnheader", name="tag_type")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "product_tags_preview.png")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.screenshot(path=ARTIFACTS / "product_tags.png", full_page=True)


def test_model_evaluation_page_opens_on_the_results_table(page: Page,
                                                          dagster_ui: DagsterUI) -> None:
    """The first metadata entry a data engineer sees on tag_model_evaluation is the table of
    the tagger, its backends and the baseline per scope, with the gate's decision in words,
    then tagger - baseline with its interval; the numeric entries (for the UI's plots) come
    after it."""
    with dg.DagsterInstance.from_config(dagster_ui.home.env["DAGSTER_HOME"]) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("tag_model_evaluation"))
    keys = list(event.asset_materialization.metadata)
    assert keys[0] == "results" and len(keys) > 20
    page.goto(f"{dagster_ui.url}/assets/tag_model_evaluation")
    expect(page.get_by_text("Metadata", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="results", exact=True)).to_be_visible()
    shown = [text.strip() for text in page.get_by_role("row").evaluate_all(
        "rows => rows.map(r => (r.querySelector('td') || {}).innerText || '')")]
    metadata_rows = [text for text in shown if text in keys]
    assert metadata_rows[:2] == ["results", "decision"], metadata_rows[:5]
    results = page.get_by_role("row").filter(
        has=page.get_by_role("cell", name="results", exact=True)).get_by_role("cell").last
    results.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    # two tables: the models per scope, then tagger - baseline with its interval
    facets, margins = dialog.get_by_role("table").first, dialog.get_by_role("table").nth(1)
    for header in ("scope", "acc tagger", "macro tagger", "acc baseline"):
        expect(facets.get_by_role("columnheader", name=header, exact=True)).to_be_visible()
    for header in ("scope", "metric", "tagger - baseline", "low", "high"):
        expect(margins.get_by_role("columnheader", name=header, exact=True)).to_be_visible()
    expect(dialog.get_by_text(re.compile(r"v\d+ (promoted|NOT promoted)")).first).to_be_visible()
    page.screenshot(path=ARTIFACTS / "tag_model_evaluation.png")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
