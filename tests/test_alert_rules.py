"""The Prometheus alerting rules: promtool accepts and unit-tests them, and every alert is documented.

PyYAML is not a dependency, so the rules file is read with a small line-based scan that relies on
its layout (one `- alert:` item per rule, keys indented below it).
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "alerts" / "panicwatch.rules.yml"
TESTS_DIR = ROOT / "alerts" / "tests"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
RUNBOOK_BASE = "https://github.com/panicwatch/panicwatch/blob/main/docs/runbooks.md#"
SEVERITIES = {"critical", "warning", "info"}

PROMTOOL = shutil.which("promtool")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None, "promtool missing: .ci/run installs Debian's prometheus package"
    return subprocess.run(
        [PROMTOOL, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def _alerts() -> dict[str, str]:
    """Alert name -> the text of its rule item."""
    alerts: dict[str, str] = {}
    name = None
    block: list[str] = []
    for line in RULES.read_text().splitlines():
        item = re.match(r"\s*- (alert|record):\s*(\S+)", line)
        if item or re.match(r"\s*- name:", line):
            if name:
                alerts[name] = "\n".join(block)
            name = item.group(2) if item and item.group(1) == "alert" else None
            block = []
        block.append(line)
    if name:
        alerts[name] = "\n".join(block)
    return alerts


def _github_anchor(heading: str) -> str:
    anchor = heading.strip().lower()
    anchor = re.sub(r"[^\w\- ]", "", anchor)
    return anchor.replace(" ", "-")


def test_rules_file_parsed() -> None:
    alerts = _alerts()
    assert len(alerts) >= 12
    assert len(alerts) == len(re.findall(r"^\s*- alert:", RULES.read_text(), re.MULTILINE))


def test_promtool_check_rules() -> None:
    result = _run("check", "rules", str(RULES))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output
    assert "WARNING" not in output.upper()
    records = len(re.findall(r"^\s*- record:", RULES.read_text(), re.MULTILINE))
    assert f"{len(_alerts()) + records} rules found" in output


def test_promtool_test_rules() -> None:
    files = sorted(str(p) for p in TESTS_DIR.glob("*.yml"))
    assert files
    result = _run("test", "rules", *files)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("SUCCESS") == len(files), output
    assert "FAILED" not in output


@pytest.mark.parametrize("name", sorted(_alerts()))
def test_alert_metadata(name: str) -> None:
    block = _alerts()[name]
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", name), "alert names are CamelCase"
    severity = re.search(r"^\s+severity:\s*(\S+)", block, re.MULTILINE)
    assert severity and severity.group(1) in SEVERITIES
    for key in ("summary", "description", "runbook_url"):
        assert re.search(rf"^\s+{key}:\s*\S", block, re.MULTILINE), f"{name} has no {key}"
    assert "{{ $labels." in block, f"{name}'s description uses no label"
    url = re.search(r"^\s+runbook_url:\s*(\S+)", block, re.MULTILINE)
    assert url and url.group(1) == RUNBOOK_BASE + name.lower()


def test_every_runbook_anchor_exists() -> None:
    headings = re.findall(r"^#{1,6} (.+)$", RUNBOOKS.read_text(), re.MULTILINE)
    anchors = {_github_anchor(h) for h in headings}
    for name, block in _alerts().items():
        url = re.search(r"runbook_url:\s*(\S+)", block)
        assert url, name
        anchor = url.group(1).split("#", 1)[1]
        assert anchor in anchors, f"{name}: no heading for #{anchor} in docs/runbooks.md"


def test_every_alert_is_unit_tested() -> None:
    tested = set()
    for path in TESTS_DIR.glob("*.yml"):
        tested |= set(re.findall(r"alertname:\s*(\S+)", path.read_text()))
    missing = set(_alerts()) - tested
    assert not missing, f"alerts without a promtool test: {sorted(missing)}"
