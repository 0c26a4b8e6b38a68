"""deploy/kubernetes with the Prometheus Operator (`kubectl apply -k deploy/kubernetes`).

kustomization.yaml renders exactly its three files (kubectl kustomize); the PodMonitor and the
PrometheusRule validate against the CRD schemas in tests/fixtures/crds (README there says
where they come from) and each schema is shown rejecting broken copies; the PodMonitor
selects the DaemonSet's pods on a port they have; the PrometheusRule is
deploy/kubernetes/build.py's output, holds exactly alerts/panicwatch.rules.yml's groups, and
promtool accepts it. The Namespace, ServiceAccount and DaemonSet are checked in test_deploy.py.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from conftest import load_script

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy/kubernetes"
RULES = REPO / "alerts/panicwatch.rules.yml"
SCRAPE = REPO / "deploy/prometheus/scrape.yml"
CRDS = Path(__file__).resolve().parent / "fixtures/crds"

RESOURCES = ["daemonset.yaml", "podmonitor.yaml", "prometheusrule.yaml"]
OPERATOR = "monitoring.coreos.com/v1"
SCHEMA_FILES = {
    (OPERATOR, "PodMonitor"): CRDS / "podmonitor.v1.schema.yaml",
    (OPERATOR, "PrometheusRule"): CRDS / "prometheusrule.v1.schema.yaml",
}
# Validated by tests/test_deploy.py against its schema of the core API subset they use.
CORE_KINDS = {("v1", "Namespace"), ("v1", "ServiceAccount"), ("apps/v1", "DaemonSet")}
RELEASE = "kube-prometheus-stack"
# kubectl apply (client-side) keeps the whole object in the last-applied-configuration
# annotation, and an object's annotations may hold at most this many bytes.
ANNOTATIONS_LIMIT = 262144

Doc = dict[str, Any]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def load_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def kustomization() -> Doc:
    doc: Doc = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return doc


def listed_docs() -> list[Doc]:
    """Every object of the files kustomization.yaml lists, in its order."""
    return [d for name in kustomization()["resources"] for d in load_docs(K8S / name)]


def the(docs: list[Doc], kind: str) -> Doc:
    (found,) = (d for d in docs if d["kind"] == kind)
    return found


def identity(doc: Doc) -> tuple[str, str, str, str]:
    meta = doc["metadata"]
    return doc["apiVersion"], doc["kind"], meta.get("namespace", ""), meta["name"]


def load_generator() -> ModuleType:
    return load_script(K8S / "build.py")


@cache
def validator(api_version: str, kind: str) -> Draft202012Validator:
    schema = yaml.safe_load(SCHEMA_FILES[(api_version, kind)].read_text())
    Draft202012Validator.check_schema(schema)  # a typo in the schema itself fails here
    return Draft202012Validator(schema)


def schema_errors(doc: Doc) -> list[str]:
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in SCHEMA_FILES:
        return [f"no schema for {key}"]
    errors = sorted(f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                    for e in validator(*key).iter_errors(doc))
    if doc["kind"] == "PrometheusRule" and not errors:
        # x-kubernetes-list-type: map keyed by name, which JSON Schema cannot say.
        names = Counter(g["name"] for g in doc["spec"].get("groups", []))
        errors += [f"spec/groups: duplicate name {n!r}" for n, count in names.items() if count > 1]
    return errors


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl missing: .ci/run installs Debian's kubernetes-client")
        pytest.skip("kubectl is not installed (CI always runs this)")
    return path


def kustomize(directory: Path) -> list[Doc]:
    done = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d is not None]


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions, ANDed) on labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {"In": key in labels and labels[key] in values,
              "NotIn": key not in labels or labels[key] not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def seconds(duration: str) -> float:
    """A Prometheus duration as the CRDs allow it (1h30m, 10s, 500ms)."""
    units = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"([0-9]+)(ms|[ywdhms])", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


# --------------------------------------------------------------------------------------------
# kustomize: `kubectl apply -k deploy/kubernetes` applies exactly the checked files
# --------------------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    assert kustomization() == {"apiVersion": "kustomize.config.k8s.io/v1beta1",
                               "kind": "Kustomization", "resources": RESOURCES}
    # A manifest added to the directory but not to the kustomization would not be applied.
    assert sorted(p.name for p in K8S.glob("*.y*ml") if p.name != "kustomization.yaml") == RESOURCES


def test_kustomize_renders_exactly_the_listed_files() -> None:
    rendered = kustomize(K8S)
    assert sorted(rendered, key=identity) == sorted(listed_docs(), key=identity)
    assert sorted(d["kind"] for d in rendered) == [
        "DaemonSet", "Namespace", "PodMonitor", "PrometheusRule", "ServiceAccount"]


def test_every_object_is_checked_against_a_schema() -> None:
    docs = listed_docs()
    kinds = [(d["apiVersion"], d["kind"]) for d in docs]
    assert sorted(kinds) == sorted([*CORE_KINDS, *SCHEMA_FILES])
    # The core objects are daemonset.yaml's, which test_deploy.py validates.
    assert [d for d in docs if (d["apiVersion"], d["kind"]) in CORE_KINDS] == load_docs(
        K8S / "daemonset.yaml")
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) not in CORE_KINDS:
            assert schema_errors(doc) == [], doc["kind"]


def test_an_unknown_kind_has_no_schema() -> None:
    service = {"apiVersion": OPERATOR, "kind": "ServiceMonitor", "metadata": {"name": "x"}}
    assert schema_errors(service) == [f"no schema for {(OPERATOR, 'ServiceMonitor')}"]


def _endpoint(d: Doc) -> Doc:
    endpoint: Doc = d["spec"]["podMetricsEndpoints"][0]
    return endpoint


def _rule(d: Doc) -> Doc:
    rule: Doc = d["spec"]["groups"][0]["rules"][0]
    return rule


BROKEN: dict[str, tuple[str, Callable[[Doc], Any], str]] = {
    "port-typo": ("podmonitor.yaml", lambda d: _endpoint(d).update(prot=_endpoint(d).pop("port")),
                  "spec/podMetricsEndpoints/0: Additional properties are not allowed "
                  "('prot' was unexpected)"),
    "interval": ("podmonitor.yaml", lambda d: _endpoint(d).update(interval="30 s"),
                 "spec/podMetricsEndpoints/0/interval: '30 s' does not match"),
    "scheme": ("podmonitor.yaml", lambda d: _endpoint(d).update(scheme="tcp"),
               "spec/podMetricsEndpoints/0/scheme: 'tcp' is not one of "
               "['http', 'https', 'HTTP', 'HTTPS']"),
    "relabel-action": ("podmonitor.yaml",
                       lambda d: _endpoint(d)["relabelings"][0].update(action="kepp"),
                       "spec/podMetricsEndpoints/0/relabelings/0/action: 'kepp' is not one of"),
    "no-selector": ("podmonitor.yaml", lambda d: d["spec"].pop("selector"),
                    "spec: 'selector' is a required property"),
    "label-not-string": ("podmonitor.yaml", lambda d: d["metadata"]["labels"].update(release=1),
                         "metadata/labels/release: 1 is not of type 'string'"),
    "old-group": ("podmonitor.yaml", lambda d: d.update(apiVersion="monitoring.coreos.com/v1alpha1"),
                  "no schema for ('monitoring.coreos.com/v1alpha1', 'PodMonitor')"),
    "for-words": ("prometheusrule.yaml", lambda d: _rule(d).update({"for": "10 minutes"}),
                  "spec/groups/0/rules/0/for: '10 minutes' does not match"),
    "no-expr": ("prometheusrule.yaml", lambda d: _rule(d).pop("expr"),
                "spec/groups/0/rules/0: 'expr' is a required property"),
    "rules-typo": ("prometheusrule.yaml",
                   lambda d: d["spec"]["groups"][0].update(rule=d["spec"]["groups"][0].pop("rules")),
                   "spec/groups/0: Additional properties are not allowed ('rule' was unexpected)"),
    "empty-group-name": ("prometheusrule.yaml", lambda d: d["spec"]["groups"][0].update(name=""),
                         "spec/groups/0/name: '' should be non-empty"),
    "annotation-number": ("prometheusrule.yaml",
                          lambda d: _rule(d)["annotations"].update(priority=1),
                          "spec/groups/0/rules/0/annotations/priority: 1 is not of type 'string'"),
    "duplicate-group": ("prometheusrule.yaml",
                        lambda d: d["spec"]["groups"].append(copy.deepcopy(d["spec"]["groups"][0])),
                        "spec/groups: duplicate name 'panicwatch-kdump'"),
    "bad-name": ("prometheusrule.yaml", lambda d: d["metadata"].update(name="Panicwatch"),
                 "metadata/name: 'Panicwatch' does not match"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_schemas_reject_broken_copies(case: str) -> None:
    name, mutate, said = BROKEN[case]
    (doc,) = load_docs(K8S / name)
    assert schema_errors(doc) == []
    mutate(doc)
    errors = schema_errors(doc)
    assert len(errors) == 1 and errors[0].startswith(said), errors


# --------------------------------------------------------------------------------------------
# the PodMonitor scrapes the DaemonSet
# --------------------------------------------------------------------------------------------


def test_podmonitor_selects_the_daemonset_pods() -> None:
    docs = listed_docs()
    monitor, daemonset = the(docs, "PodMonitor"), the(docs, "DaemonSet")
    pod = daemonset["spec"]["template"]
    # No namespaceSelector: the PodMonitor's own namespace, which must be the pods'.
    assert "namespaceSelector" not in monitor["spec"]
    assert monitor["metadata"]["namespace"] == daemonset["metadata"]["namespace"] == "panicwatch"
    assert monitor["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "panicwatch"}}
    assert selects(monitor["spec"]["selector"], pod["metadata"]["labels"])
    # And the selector is no blanket one: another app's pods are not scraped.
    assert not selects(monitor["spec"]["selector"], {"app.kubernetes.io/name": "node-exporter"})

    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p for p in container["ports"]}
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["metrics"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert ports["metrics"]["protocol"] == "TCP"
    # The named port is the one panicwatch listens on.
    (listen,) = [a for a in container["args"] if a.startswith("--web.listen-address=")]
    assert listen == f"--web.listen-address=:{ports['metrics']['containerPort']}"
    assert endpoint["path"] == "/metrics"
    assert endpoint.get("scheme", "http") == "http"  # no --web.config.file in the DaemonSet


def test_selector_helper_follows_kubernetes_semantics() -> None:
    labels = {"app": "panicwatch", "tier": "node"}
    assert selects({}, labels)  # an empty selector selects everything
    assert selects({"matchExpressions": [{"key": "app", "operator": "In", "values": ["panicwatch"]}]},
                   labels)
    assert not selects({"matchExpressions": [{"key": "app", "operator": "NotIn",
                                              "values": ["panicwatch"]}]}, labels)
    assert selects({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, labels)
    assert not selects({"matchLabels": {"app": "panicwatch"},
                        "matchExpressions": [{"key": "zone", "operator": "Exists"}]}, labels)


def test_podmonitor_job_instance_and_timing() -> None:
    docs = listed_docs()
    monitor = the(docs, "PodMonitor")
    pod_labels = the(docs, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    # job is the pods' jobLabel value, and PanicwatchDown's job matcher must cover it.
    job = pod_labels[monitor["spec"]["jobLabel"]]
    assert job == "panicwatch"
    down = next(r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]
                if r.get("alert") == "PanicwatchDown")
    matchers = set(re.findall(r'up\{job=~"([^"]+)"\}', down["expr"]))
    assert matchers == {"panicwatch.*"}
    assert re.fullmatch(matchers.pop(), job)
    # Targets named after their node, as deploy/prometheus/scrape.yml names them.
    assert endpoint["relabelings"] == [
        {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "instance"},
        {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}]
    # The operator refuses a timeout above the interval; both equal the scrape.yml job's.
    assert seconds(endpoint["scrapeTimeout"]) <= seconds(endpoint["interval"])
    job_config = next(j for j in yaml.safe_load(SCRAPE.read_text())["scrape_configs"]
                      if j["job_name"] == "panicwatch-kubernetes")
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == (
        job_config["scrape_interval"], job_config["scrape_timeout"]) == ("30s", "10s")


def test_duration_parser() -> None:
    assert seconds("1h30m") == 5400
    assert seconds("500ms") == 0.5
    with pytest.raises(AssertionError):
        seconds("30 s")


def test_release_label_for_kube_prometheus_stack() -> None:
    docs = listed_docs()
    for kind in ("PodMonitor", "PrometheusRule"):
        assert the(docs, kind)["metadata"]["labels"]["release"] == RELEASE, kind
    assert load_generator().RELEASE == RELEASE


def test_release_label_overlay(tmp_path: Path) -> None:
    """The README's overlay for another Helm release name, rendered by kubectl's kustomize."""
    version = subprocess.run([kubectl(), "version", "--client", "-o", "json"], capture_output=True,
                             text=True, timeout=60, check=True)
    found = re.match(r"v(\d+)\.(\d+)", json.loads(version.stdout)["clientVersion"]["gitVersion"])
    assert found
    if (int(found[1]), int(found[2])) < (1, 21):
        # Debian bookworm's kubernetes-client is 1.20, whose kustomize v2.0.3 has no `patches:`.
        pytest.skip("kubectl before 1.21 embeds kustomize v2, without `patches:`")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    # kustomize refuses an absolute path as a base: name it relative to the overlay.
    base = os.path.relpath(K8S, overlay)
    (overlay / "kustomization.yaml").write_text(f"""\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - {base}
images:
  - name: registry.example.com/panicwatch
    newName: registry.internal.example/panicwatch
    newTag: 0.1.0
patches:
  - target:
      group: monitoring.coreos.com
    patch: |-
      - op: replace
        path: /metadata/labels/release
        value: prometheus
""")
    rendered = {d["kind"]: d for d in kustomize(overlay)}
    original = {d["kind"]: d for d in listed_docs()}
    assert sorted(rendered) == sorted(original)
    for kind in ("PodMonitor", "PrometheusRule"):
        assert rendered[kind]["metadata"]["labels"]["release"] == "prometheus"
        rendered[kind]["metadata"]["labels"]["release"] = RELEASE
    (container,) = rendered["DaemonSet"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.internal.example/panicwatch:0.1.0"
    container["image"] = "registry.example.com/panicwatch:0.1.0"
    assert rendered == original  # nothing else changed


# --------------------------------------------------------------------------------------------
# the PrometheusRule is the rules file
# --------------------------------------------------------------------------------------------


def test_prometheusrule_is_what_the_generator_writes() -> None:
    generated = load_generator().render(RULES.read_text())
    assert (K8S / "prometheusrule.yaml").read_text() == generated, (
        "run python3 deploy/kubernetes/build.py")


def test_generator_check_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = load_generator()
    assert build.main(["--check"]) == 0
    stale = tmp_path / "prometheusrule.yaml"
    stale.write_text((K8S / "prometheusrule.yaml").read_text().replace("for: 10m", "for: 20m", 1))
    monkeypatch.setattr(build, "OUT", stale)
    assert build.main(["--check"]) == 1
    assert build.main([]) == 0  # rewrites it
    assert stale.read_text() == (K8S / "prometheusrule.yaml").read_text()
    assert build.main(["--check"]) == 0


@pytest.mark.parametrize("text", [
    "groups: []\nextra: 1\n",
    "# no groups\n",
    "groups:\n  - name: a\n---\ngroups: []\n",
], ids=["second-key", "no-groups", "two-documents"])
def test_generator_refuses_what_it_cannot_indent(text: str) -> None:
    with pytest.raises(ValueError):
        load_generator().render(text)


def test_prometheusrule_groups_equal_the_rules_file() -> None:
    rules = yaml.safe_load(RULES.read_text())
    (prometheus_rule,) = load_docs(K8S / "prometheusrule.yaml")
    assert list(rules) == ["groups"]  # nothing in the rules file is left out of the spec
    assert prometheus_rule["spec"] == {"groups": rules["groups"]}
    assert prometheus_rule["metadata"]["namespace"] == "panicwatch"


def test_promtool_accepts_the_prometheusrule_spec(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool missing: .ci/run installs Debian's prometheus package"
    (prometheus_rule,) = load_docs(K8S / "prometheusrule.yaml")
    spec = prometheus_rule["spec"]
    rule_file = tmp_path / "panicwatch.rules.yml"
    rule_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    done = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True,
                          text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    count = sum(len(g["rules"]) for g in spec["groups"])
    assert f"SUCCESS: {count} rules found" in output
    assert "WARNING" not in output.upper()


def test_prometheusrule_fits_client_side_apply() -> None:
    (prometheus_rule,) = load_docs(K8S / "prometheusrule.yaml")
    assert len(json.dumps(prometheus_rule, separators=(",", ":"))) < ANNOTATIONS_LIMIT
