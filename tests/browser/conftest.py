"""The app served on 127.0.0.1 over a copy of the tiny atlas (with a clustering and a 2-D map written into its
real SQLite file), and Debian's Chromium driven by Playwright. Every page fails its test on a console error or
an uncaught page error; every test saves a screenshot under test-output/screenshots/."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import CHROMIUM, REPO, copy_atlas

SCREENSHOTS = REPO / "test-output" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
VIEWPORT = {"width": 1440, "height": 900}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


def write_clustering_and_map(store, model_name: str) -> None:
    """A real clustering (k-means, 2 clusters per head, on the stored AP-MAE embeddings) and a 2-D map (PCA of
    the embeddings), in the shapes the analysis jobs write, so the pages' cluster and map views have data
    without UMAP's numba compilation."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sqlalchemy import select

    from attnlens.store.models import (
        Cluster,
        ClusterAssignment,
        Clustering,
        HeadPattern,
        Inference,
        MapPoint,
        PatternMap,
    )
    from attnlens.store.patterns import load_embeddings

    with store.session() as session:
        rows = session.execute(
            select(HeadPattern.id, HeadPattern.layer, HeadPattern.head).order_by(HeadPattern.id)
        ).all()
        ids = np.array([r.id for r in rows])
        embeddings = load_embeddings(session, ids).astype(np.float32)
        embedder = session.scalar(select(Inference.embedder).limit(1))
        clustering = Clustering(
            model_name=model_name, embedder=embedder, parameters={"complete": True, "method": "kmeans-test"}
        )
        pattern_map = PatternMap(
            name="browser-test", parameters={"complete": True, "model": model_name, "points": len(ids)}
        )
        session.add_all([clustering, pattern_map])
        session.flush()
        layers = np.array([r.layer for r in rows])
        heads = np.array([r.head for r in rows])
        for layer, head in sorted(set(zip(layers.tolist(), heads.tolist(), strict=True))):
            members = np.flatnonzero((layers == layer) & (heads == head))
            labels = KMeans(n_clusters=2, n_init=3, random_state=0).fit_predict(embeddings[members])
            for label in (0, 1):
                inside = members[labels == label]
                centre = embeddings[inside].mean(axis=0)
                medoid = inside[np.argmin(((embeddings[inside] - centre) ** 2).sum(axis=1))]
                session.add(Cluster(clustering_id=clustering.id, layer=layer, head=head, label=label,
                                    size=len(inside), medoid_head_pattern_id=int(ids[medoid]),
                                    attributes={}))  # fmt: skip
            session.add_all(
                ClusterAssignment(clustering_id=clustering.id, head_pattern_id=int(ids[m]), label=int(lab))
                for m, lab in zip(members, labels, strict=True)
            )
        xy = PCA(n_components=2, random_state=0).fit_transform(embeddings)
        session.add_all(
            MapPoint(
                pattern_map_id=pattern_map.id, head_pattern_id=int(i), x=float(x), y=float(y), fitted=True
            )
            for i, (x, y) in zip(ids, xy, strict=True)
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def browser_atlas(tiny_atlas, tmp_path_factory: pytest.TempPathFactory):
    """(settings, store) of a private copy of the tiny atlas, with a clustering and a map."""
    from attnlens.store import open_store

    settings, _store, _report = tiny_atlas
    data_dir = tmp_path_factory.mktemp("browser-atlas") / "data"
    copy_atlas(settings.data_dir, data_dir)
    copied = settings.model_copy(update={"data_dir": data_dir})
    store = open_store(copied)
    write_clustering_and_map(store, copied.model.name)
    return copied, store


@pytest.fixture(scope="session")
def served_worker(browser_atlas):
    """The worker behind the test server (the tiny model), for tests that need to make it busy."""
    from attnlens.service.local import LocalWorker

    settings, store = browser_atlas
    worker = LocalWorker(settings, store)
    worker.start(background=False)
    return worker


@contextmanager
def serving(app, name: str) -> Iterator[str]:
    """Run an ASGI app on a free loopback port in a thread; yields its base URL, stops it after."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start within 30 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def private_server(settings, worker, data_dir: Path, name: str) -> Iterator[tuple[str, Any, Any]]:
    """The app over a private copy of the atlas of `settings` in `data_dir`, for tests that change what it
    holds (jobs, maps); yields (url, the copy's settings, its store)."""
    from attnlens.api import create_app
    from attnlens.store import open_store

    copy_atlas(settings.data_dir, data_dir)
    mine = settings.model_copy(update={"data_dir": data_dir})
    store = open_store(mine)
    with serving(create_app(mine, worker, store), name) as url:
        yield url, mine, store


@pytest.fixture(scope="session")
def live_server(browser_atlas, served_worker) -> Iterator[str]:
    """The real app (API + pages) on 127.0.0.1, a worker holding the tiny model; yields the base URL."""
    from attnlens.api import create_app

    settings, store = browser_atlas
    with serving(create_app(settings, served_worker, store), "browser-test-server") as url:
        yield url


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageProblems:
    """Console errors and uncaught exceptions seen by one page. A test that provokes an HTTP error on purpose
    (to see the page show it) lists that request's URL path in `expected_http_errors`."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.expected_http_errors: list[str] = []

    def console(self, message) -> None:
        if message.type != "error":
            return
        url = message.location.get("url") or ""
        if message.text.startswith("Failed to load resource") and any(
            p in url for p in self.expected_http_errors
        ):
            return
        self.messages.append(f"console error: {message.text} at {url}")

    def page_error(self, error) -> None:
        self.messages.append(f"page error: {error}")


@contextmanager
def watched_page(chromium, url: str, *, timeout_ms: int = 20_000, expected_http_errors: tuple[str, ...] = ()):
    """A fresh page on a server of the test's own, for tests that do not use the shared `page`: console and
    page errors are collected, and the test fails on any after its block (HTTP errors on the listed URL
    paths excepted, for tests that provoke them)."""
    problems = PageProblems()
    problems.expected_http_errors += list(expected_http_errors)
    context = chromium.new_context(viewport=VIEWPORT, base_url=url)
    page = context.new_page()
    page.on("console", problems.console)
    page.on("pageerror", problems.page_error)
    page.set_default_timeout(timeout_ms)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield page
    finally:
        context.close()
    assert not problems.messages, "\n".join(problems.messages)


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(chromium, live_server: str, request: pytest.FixtureRequest, problems: PageProblems):
    """A fresh page at 1440x900; after the test: a screenshot, and a failure if the console saw an error."""
    context = chromium.new_context(viewport=VIEWPORT, base_url=live_server)
    page = context.new_page()
    page.on("console", problems.console)
    page.on("pageerror", problems.page_error)
    page.set_default_timeout(20_000)
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not problems.messages, "\n".join(problems.messages)


def open_view(page, hash_route: str) -> None:
    """Go to a view and wait until the router says it has rendered."""
    page.goto(f"/{hash_route}")
    page.wait_for_selector("#page[data-ready=true]")
