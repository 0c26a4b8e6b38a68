from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from prometheus_client.parser import text_string_to_metric_families

import trees
from panicwatch.collectors.registry import build_registry
from panicwatch.exposition import render_all
from panicwatch.settings import Settings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: builds the container image with buildah and runs "
                            "it (about 5 min on a fresh machine, 1 min with the base cached)")
    config.addinivalue_line("markers", "vm: real-kernel end-to-end tests in a QEMU guest (root, "
                            "10-15 min; skipped unless selected with -m vm: make e2e)")


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def load_script(path: Path) -> ModuleType:
    """A generator script (dashboards/build.py, deploy/kubernetes/build.py) as a module: they
    are scripts, not part of the package."""
    spec = importlib.util.spec_from_file_location(f"panicwatch_script_{path.parent.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scrape_text(text: str) -> Samples:
    """Exposition text -> {(sample name, sorted labels): value}."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def scrape(root: Path, **settings: object) -> Samples:
    registry = build_registry(Settings(path_rootfs=root, **settings))
    return scrape_text(render_all(registry).decode())


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def names(samples: Samples, prefix: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in samples.items() if n == prefix}


@pytest.fixture
def tree(tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        return trees.build(name, tmp_path / name)

    return make
