"""Shared fixtures: quiet progress bars, no DVC analytics, and a private DVC site cache."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _quiet_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("DFGAN_NO_PROGRESS", "1")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "dvc-site-cache"))
    os.environ.setdefault("OMP_NUM_THREADS", "2")
