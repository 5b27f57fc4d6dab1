"""Shared fixtures: quiet progress bars, no DVC analytics, and a private DVC site cache."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterator

import pytest
import torch

if TYPE_CHECKING:
    from tests.pipeline_repo import ReproducedPipeline


@pytest.fixture(autouse=True)
def _quiet_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("DFGAN_NO_PROGRESS", "1")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "dvc-site-cache"))
    os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory) -> "ReproducedPipeline":
    """One full `dvc repro` of the tiny params, shared by the end-to-end and parallel-runner tests (the most
    expensive thing the suite does). Its results are read at once, so a test that changes the repo later (the
    experiment in test_pipeline_e2e) cannot change what another test compares against."""
    from tests.pipeline_repo import reproduce_tiny_pipeline

    return reproduce_tiny_pipeline(tmp_path_factory.mktemp("tiny_pipeline") / "repo")


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Tiny models train faster on one thread; two threads on a shared 2-core box oversubscribe it (10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
