"""The Prometheus alerting rules: promtool accepts and unit-tests them, and every alert is documented."""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

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


def _rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"]
            for rule in group["rules"]]


def _alerts() -> dict[str, dict[str, Any]]:
    """Alert name -> its rule."""
    return {rule["alert"]: rule for rule in _rules() if "alert" in rule}


def _github_anchor(heading: str) -> str:
    anchor = heading.strip().lower()
    anchor = re.sub(r"[^\w\- ]", "", anchor)
    return anchor.replace(" ", "-")


def test_rules_file_parsed() -> None:
    alerts = _alerts()
    assert len(alerts) == 22
    assert len(alerts) == len(re.findall(r"^\s*- alert:", RULES.read_text(), re.MULTILINE))


def test_promtool_check_rules() -> None:
    result = _run("check", "rules", str(RULES))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output
    assert "WARNING" not in output.upper()
    assert f"{len(_rules())} rules found" in output


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
    rule = _alerts()[name]
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", name), "alert names are CamelCase"
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert "{{" not in annotations["summary"], f"{name}'s summary is a static sentence"
    assert "{{ $labels." in annotations["description"], f"{name}'s description uses no label"
    assert annotations["runbook_url"] == RUNBOOK_BASE + name.lower()


def test_every_runbook_anchor_exists() -> None:
    headings = re.findall(r"^#{1,6} (.+)$", RUNBOOKS.read_text(), re.MULTILINE)
    anchors = {_github_anchor(h) for h in headings}
    for name, rule in _alerts().items():
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in anchors, f"{name}: no heading for #{anchor} in docs/runbooks.md"


def test_every_alert_is_unit_tested() -> None:
    tested = set()
    for path in TESTS_DIR.glob("*.yml"):
        tested |= set(re.findall(r"alertname:\s*(\S+)", path.read_text()))
    missing = set(_alerts()) - tested
    assert not missing, f"alerts without a promtool test: {sorted(missing)}"


def _kernel_crash_recurring_window(promql: str) -> str:
    """The inner count of KernelCrashRecurring's expression: the dumps it counts."""
    m = re.search(r"last_over_time\(panicwatch_vmcore_crash_info\{title(?:!~\"[^\"]*\"|=%q)\}\[7d\]\)"
                  r"\s*and on\(instance, job, dump\)\s*\(last_over_time\("
                  r"panicwatch_vmcore_timestamp_seconds\[7d\]\) > time\(\) - 7 \* 86400\)", promql)
    assert m is not None, promql
    return re.sub(r"\s+", " ", re.sub(r'title(!~"[^"]*"|=%q)', "title", m.group(0)))


def test_kernel_crash_recurring_counts_hosts_per_title_in_the_window() -> None:
    rule = _alerts()["KernelCrashRecurring"]
    expr = rule["expr"]
    assert re.search(r"\)\s*>= 3\s*$", expr), "the threshold is the literal 3 (see the runbook)"
    assert expr.lstrip().startswith("count by (title) (\n  count by (title, instance) (")
    assert "for" not in rule
    assert rule["labels"] == {"severity": "warning"}
    # the description's per-kernel query counts the same dumps as the alert
    [query] = re.findall(r"printf `([^`]+)`", rule["annotations"]["description"])
    assert _kernel_crash_recurring_window(query) == _kernel_crash_recurring_window(expr)
    assert query.startswith("count by (kernel_release) (count by (kernel_release, instance) (")
    runbook = RUNBOOKS.read_text()
    section = runbook[runbook.index("## KernelCrashRecurring"):]
    section = section[:section.index("\n## ", 1)]
    for needed in ("https://lore.kernel.org/all/?q=", "https://syzkaller.appspot.com/upstream",
                   "panicwatch triage", "kernel_release", "Change the threshold", ">= 3"):
        assert needed in section, needed


def test_host_panicked_names_the_crash() -> None:
    rule = _alerts()["HostPanicked"]
    assert "group_left(reason, kind, title, kernel_release, module)" in rule["expr"]
    assert "on(instance, job, dump) group_left(module)" in rule["expr"]
    for label in ("title", "module", "kernel_release", "kind", "reason"):
        assert f"$labels.{label}" in rule["annotations"]["description"], label
