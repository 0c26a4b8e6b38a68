"""deploy/: the systemd unit (systemd-analyze), the DaemonSet (an explicit schema of the
Kubernetes API subset it uses, plus what panicwatch needs of it) and the Prometheus scrape
configuration (promtool). Each check is also shown failing on a broken copy."""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from panicwatch.cli import build_parser
from panicwatch.settings import Settings

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "deploy/systemd/panicwatch.service"
DEFAULTS = REPO / "deploy/systemd/panicwatch.default"
DAEMONSET = REPO / "deploy/kubernetes/daemonset.yaml"
SCRAPE = REPO / "deploy/prometheus/scrape.yml"

# What the collectors need beyond an ordinary user, and nothing else (see the unit's comments).
UNIT_CAPABILITIES = {"CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE", "CAP_SYSLOG"}
# In the pod the process is UID 0 with every capability dropped; these may be added back.
POD_CAPABILITIES = {"SYS_PTRACE", "SYSLOG", "DAC_READ_SEARCH"}
MAX_EXPOSURE = 3.0  # systemd-analyze security; 2.7 when written


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


# --------------------------------------------------------------------------------------------
# systemd
# --------------------------------------------------------------------------------------------


def unit_entries(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) in order; keys may repeat (SystemCallFilter=, DeviceAllow=)."""
    entries: list[tuple[str, str, str]] = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {raw!r}"
        entries.append((section, key.strip(), value.strip()))
    return entries


def service_values(text: str, key: str) -> list[str]:
    return [v for s, k, v in unit_entries(text) if s == "Service" and k == key]


def service_value(text: str, key: str) -> str | None:
    values = service_values(text, key)
    return values[-1] if values else None


@dataclass
class Verified:
    returncode: int
    output: str

    @property
    def clean(self) -> bool:
        # systemd-analyze exits 0 on a line it ignored ("Unknown key", "Failed to parse"):
        # only an empty report is a clean unit.
        return self.returncode == 0 and not self.output.strip()


def verify_unit(text: str, tmp_path: Path, executable: bool = True, *,
                name: str = "panicwatch.service", others: dict[str, str] | None = None) -> Verified:
    """`systemd-analyze verify` of the unit (and ``others``: name -> text, verified with it)
    installed as the README says, in a root that has the host's own units (so After=/WantedBy=
    resolve) and the console script when asked."""
    analyze = tool("systemd-analyze")
    host_units = next((d for d in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                       if d.is_dir()), None)
    if host_units is None:
        pytest.skip("no systemd unit directory on this host")
    root = tmp_path / "root"
    shutil.copytree(host_units, root / "usr/lib/systemd/system", symlinks=True)
    units = {name: text, **(others or {})}
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit, unit_text in units.items():
        (root / "etc/systemd/system" / unit).write_text(unit_text)
    if executable:
        binary = root / "usr/local/bin/panicwatch"
        binary.parent.mkdir(parents=True)
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    done = subprocess.run([analyze, "verify", f"--root={root}",
                           *(f"/etc/systemd/system/{unit}" for unit in units)],
                          capture_output=True, text=True, timeout=120)
    return Verified(done.returncode, done.stdout + done.stderr)


def test_unit_verifies_clean(tmp_path: Path) -> None:
    result = verify_unit(UNIT.read_text(), tmp_path)
    assert result.clean, result.output


@pytest.mark.parametrize(("old", "new", "executable", "said"), [
    ("NoNewPrivileges=yes", "NoNewPrivilege=yes", True, "Unknown key"),
    ("ProtectSystem=strict", "ProtectSystem=strikt", True, "Failed to parse"),
    ("AF_NETLINK", "AF_NETLNK", True, "address family"),
    ("DeviceAllow=/dev/kmsg r", "DeviceAllow=/dev/kmsg q", True, "Invalid device rights"),
    ("SystemCallFilter=@system-service", "SystemCallFilter=@system-servic", True, "Unknown"),
    (None, None, False, "/usr/local/bin/panicwatch is not executable"),
], ids=["unknown-key", "bad-value", "bad-family", "bad-device", "bad-filter", "no-binary"])
def test_verify_catches_a_broken_unit(tmp_path: Path, old: str | None, new: str | None,
                                      executable: bool, said: str) -> None:
    text = UNIT.read_text()
    if old is not None and new is not None:
        assert old in text
        text = text.replace(old, new, 1)
    result = verify_unit(text, tmp_path, executable)
    assert not result.clean
    assert said in result.output


def test_unit_grants_what_the_collectors_need() -> None:
    text = UNIT.read_text()
    assert set(service_value(text, "CapabilityBoundingSet").split()) == UNIT_CAPABILITIES  # type: ignore[union-attr]
    assert set(service_value(text, "AmbientCapabilities").split()) == UNIT_CAPABILITIES  # type: ignore[union-attr]
    assert service_value(text, "DynamicUser") == "yes"
    assert service_value(text, "User") not in ("root", "0")
    expected = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
        # yes/tmpfs would hide NFS home directories from the canary and mountstats
        "ProtectHome": "read-only",
        # yes would make /dev/kmsg inaccessible and drop CAP_SYSLOG
        "ProtectKernelLogs": "no",
        "ProtectKernelTunables": "yes", "DevicePolicy": "closed", "Restart": "on-failure",
        "EnvironmentFile": "-/etc/default/panicwatch",
    }
    assert {k: service_value(text, k) for k in expected} == expected
    # Each of these would blind a collector (see the unit's comments).
    for key, forbidden in (("PrivateDevices", "yes"), ("ProcSubset", "pid"),
                           ("PrivateUsers", "yes"), ("PrivateNetwork", "yes")):
        assert service_value(text, key) != forbidden, key
    assert service_value(text, "ProtectProc") in (None, "default")
    assert "/dev/kmsg r" in service_values(text, "DeviceAllow")
    families = set(service_value(text, "RestrictAddressFamilies").split())  # type: ignore[union-attr]
    assert {"AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"} <= families
    # CAP_SYS_PTRACE is for /proc's checks only: ptrace(2) itself must stay filtered.
    filters = " ".join(service_values(text, "SystemCallFilter")).split()
    assert "@debug" not in filters and "ptrace" not in filters
    exec_start = shlex.split(service_value(text, "ExecStart"))  # type: ignore[arg-type]
    assert exec_start[:2] == ["/usr/local/bin/panicwatch", "serve"]


def test_unit_security_exposure(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    unit = tmp_path / "panicwatch.service"
    shutil.copy(UNIT, unit)
    done = subprocess.run([analyze, "security", "--offline=yes", "--no-pager",
                           f"--threshold={int(MAX_EXPOSURE * 10)}", str(unit)],
                          capture_output=True, text=True, timeout=120)
    found = re.search(r"Overall exposure level for panicwatch\.service: ([0-9.]+)", done.stdout)
    assert found, done.stdout + done.stderr
    print(f"systemd-analyze security: exposure {found.group(1)}")
    assert float(found.group(1)) <= MAX_EXPOSURE
    assert done.returncode == 0, done.stdout[-2000:]


def env_file_lines(text: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Assignments in force, and the commented-out examples (NAME -> values)."""
    active: dict[str, str] = {}
    examples: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        commented = line.startswith("#")
        body = line.lstrip("#").strip()
        found = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", body)
        if not found:
            continue
        name, value = found.groups()
        # systemd's EnvironmentFile= quoting rules are the shell's for these values.
        words = shlex.split(value)
        unquoted = words[0] if len(words) == 1 else " ".join(words)
        if commented:
            examples.setdefault(name, []).append(unquoted)
        else:
            active[name] = unquoted
    return active, examples


def test_default_file_names_real_options() -> None:
    active, examples = env_file_lines(DEFAULTS.read_text())
    assert set(active) <= {"ARGS"} | {f"PANICWATCH_{f.upper()}" for f in Settings.model_fields}
    parser = build_parser()
    for args in [active.get("ARGS", ""), *examples.get("ARGS", [])]:
        parser.parse_args(["serve", *shlex.split(args)])  # exits on an unknown flag
    options = {n: v for n, v in examples.items() if n != "ARGS"}
    assert options
    for name, values in options.items():
        assert name.startswith("PANICWATCH_"), name
        field_name = name.removeprefix("PANICWATCH_").lower()
        assert field_name in Settings.model_fields, name
        if Settings.model_fields[field_name].annotation == list[Path]:
            for value in values:  # what pydantic-settings will json.loads
                assert all(isinstance(p, str) for p in json.loads(value)), value


def test_default_file_quoting_keeps_json() -> None:
    _, examples = env_file_lines(DEFAULTS.read_text())
    assert json.loads(examples["PANICWATCH_COLLECTOR_CANARY_PATH"][0]) == ["/srv/data", "/home"]


# --------------------------------------------------------------------------------------------
# Kubernetes: an explicit schema of the API subset the manifest uses (k8s 1.30 API reference)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Obj:
    fields: dict[str, Any]
    required: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class Enum:
    values: frozenset[str]


class StrMap:
    """labels, annotations, nodeSelector: string to string."""


class Quantities:
    """resources.requests/limits: resource name to a quantity (string or number)."""


def enum(*values: str) -> Enum:
    return Enum(frozenset(values))


def obj(required: tuple[str, ...] = (), **fields: Any) -> Obj:
    return Obj(fields, frozenset(required))


STR_LIST = ListOf(str)
INT_OR_STR = (int, str)
METADATA = obj(name=str, namespace=str, labels=StrMap, annotations=StrMap)
TOP_METADATA = obj(("name",), name=str, namespace=str, labels=StrMap, annotations=StrMap)
SECCOMP = obj(("type",), type=enum("RuntimeDefault", "Localhost", "Unconfined"),
              localhostProfile=str)
PROBE = obj(
    httpGet=obj(("port",), path=str, port=INT_OR_STR, host=str, scheme=enum("HTTP", "HTTPS"),
                httpHeaders=ListOf(obj(("name", "value"), name=str, value=str))),
    tcpSocket=obj(("port",), port=INT_OR_STR, host=str),
    exec=obj(command=STR_LIST),
    initialDelaySeconds=int, periodSeconds=int, timeoutSeconds=int, successThreshold=int,
    failureThreshold=int, terminationGracePeriodSeconds=int)
CONTAINER = obj(
    ("name", "image"),
    name=str, image=str, imagePullPolicy=enum("Always", "IfNotPresent", "Never"),
    command=STR_LIST, args=STR_LIST, workingDir=str,
    env=ListOf(obj(("name",), name=str, value=str, valueFrom=dict)),
    ports=ListOf(obj(("containerPort",), name=str, containerPort=int, hostPort=int, hostIP=str,
                     protocol=enum("TCP", "UDP", "SCTP"))),
    livenessProbe=PROBE, readinessProbe=PROBE, startupProbe=PROBE,
    resources=obj(requests=Quantities, limits=Quantities),
    securityContext=obj(
        runAsUser=int, runAsGroup=int, runAsNonRoot=bool, privileged=bool,
        allowPrivilegeEscalation=bool, readOnlyRootFilesystem=bool,
        capabilities=obj(add=STR_LIST, drop=STR_LIST), seccompProfile=SECCOMP,
        appArmorProfile=obj(("type",), type=enum("RuntimeDefault", "Localhost", "Unconfined"),
                            localhostProfile=str),
        seLinuxOptions=obj(user=str, role=str, type=str, level=str),
        procMount=enum("Default", "Unmasked")),
    volumeMounts=ListOf(obj(("name", "mountPath"), name=str, mountPath=str, readOnly=bool,
                            subPath=str,
                            mountPropagation=enum("None", "HostToContainer", "Bidirectional"),
                            recursiveReadOnly=enum("Disabled", "IfPossible", "Enabled"))))
POD_SPEC = obj(
    ("containers",),
    serviceAccountName=str, automountServiceAccountToken=bool, hostPID=bool, hostNetwork=bool,
    hostIPC=bool, dnsPolicy=enum("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"),
    priorityClassName=str, nodeSelector=StrMap, terminationGracePeriodSeconds=int,
    tolerations=ListOf(obj(key=str, operator=enum("Exists", "Equal"), value=str,
                           effect=enum("NoSchedule", "PreferNoSchedule", "NoExecute"),
                           tolerationSeconds=int)),
    securityContext=obj(runAsUser=int, runAsGroup=int, runAsNonRoot=bool, fsGroup=int,
                        supplementalGroups=ListOf(int), seccompProfile=SECCOMP),
    containers=ListOf(CONTAINER), initContainers=ListOf(CONTAINER),
    volumes=ListOf(obj(("name",), name=str,
                       hostPath=obj(("path",), path=str, type=enum(
                           "", "DirectoryOrCreate", "Directory", "FileOrCreate", "File",
                           "Socket", "CharDevice", "BlockDevice")),
                       emptyDir=dict, configMap=dict, secret=dict)))
SCHEMAS: dict[tuple[str, str], Obj] = {
    ("v1", "Namespace"): obj(("apiVersion", "kind", "metadata"), apiVersion=str, kind=str,
                             metadata=TOP_METADATA),
    ("v1", "ServiceAccount"): obj(("apiVersion", "kind", "metadata"), apiVersion=str, kind=str,
                                  metadata=TOP_METADATA, automountServiceAccountToken=bool),
    ("apps/v1", "DaemonSet"): obj(
        ("apiVersion", "kind", "metadata", "spec"), apiVersion=str, kind=str,
        metadata=TOP_METADATA,
        spec=obj(("selector", "template"),
                 selector=obj(matchLabels=StrMap, matchExpressions=ListOf(dict)),
                 template=obj(("spec",), metadata=METADATA, spec=POD_SPEC),
                 updateStrategy=obj(type=enum("RollingUpdate", "OnDelete"),
                                    rollingUpdate=obj(maxUnavailable=INT_OR_STR,
                                                      maxSurge=INT_OR_STR)),
                 minReadySeconds=int, revisionHistoryLimit=int)),
}

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?")
SCALE = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
         "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(value: object) -> float | None:
    found = QUANTITY.fullmatch(str(value))
    return float(found.group(1)) * SCALE[found.group(2)] if found else None


def conforms(value: Any, schema: Any, where: str, errors: list[str]) -> None:
    if isinstance(schema, Obj):
        if not isinstance(value, dict):
            errors.append(f"{where}: expected an object")
            return
        errors.extend(f"{where}.{k}: unknown field" for k in value if k not in schema.fields)
        errors.extend(f"{where}.{k}: required" for k in sorted(schema.required) if k not in value)
        for k, v in value.items():
            if k in schema.fields:
                conforms(v, schema.fields[k], f"{where}.{k}", errors)
    elif isinstance(schema, ListOf):
        if not isinstance(value, list):
            errors.append(f"{where}: expected a list")
            return
        for i, item in enumerate(value):
            conforms(item, schema.item, f"{where}[{i}]", errors)
    elif isinstance(schema, Enum):
        if value not in schema.values:
            errors.append(f"{where}: {value!r} is not one of {sorted(schema.values)}")
    elif schema is StrMap:
        if not (isinstance(value, dict)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
            errors.append(f"{where}: expected a map of strings (quote numbers and booleans)")
    elif schema is Quantities:
        if not isinstance(value, dict) or any(quantity(v) is None for v in value.values()):
            errors.append(f"{where}: expected resource quantities")
    else:
        types = schema if isinstance(schema, tuple) else (schema,)
        # YAML's true is not an int, and an int is not a string: the API server agrees.
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            errors.append(f"{where}: expected {'/'.join(t.__name__ for t in types)}, "
                          f"got {value!r}")


def check_manifest(docs: list[Any]) -> list[str]:
    """Schema, the API server's own cross-field rules, and what panicwatch needs."""
    errors: list[str] = []
    by_kind: dict[str, dict[str, Any]] = {}
    for i, doc in enumerate(docs):
        where = f"document {i}"
        if not isinstance(doc, dict) or (doc.get("apiVersion"), doc.get("kind")) not in SCHEMAS:
            errors.append(f"{where}: not one of {sorted(SCHEMAS)}")
            continue
        conforms(doc, SCHEMAS[(doc["apiVersion"], doc["kind"])], f"{doc['kind']}", errors)
        by_kind[doc["kind"]] = doc
    if errors:
        return errors
    ds = by_kind.get("DaemonSet")
    if ds is None:
        return ["no DaemonSet"]
    namespace = ds["metadata"].get("namespace")
    for kind in ("Namespace", "ServiceAccount"):
        if kind not in by_kind:
            errors.append(f"no {kind}")
    if "Namespace" in by_kind and by_kind["Namespace"]["metadata"]["name"] != namespace:
        errors.append("the DaemonSet is not in the Namespace defined here")
    pod = ds["spec"]["template"]
    spec = pod["spec"]
    labels = pod.get("metadata", {}).get("labels", {})
    selector = ds["spec"]["selector"].get("matchLabels", {})
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        errors.append("spec.selector.matchLabels does not match the template's labels")
    sa = by_kind.get("ServiceAccount")
    if sa and (spec.get("serviceAccountName") != sa["metadata"]["name"]
               or sa["metadata"].get("namespace") != namespace):
        errors.append("the pod does not use the ServiceAccount defined here")
    if spec.get("hostPID") is not True or spec.get("hostNetwork") is not True:
        errors.append("hostPID and hostNetwork must be true (host mountstats, tasks, sockets)")
    if {"operator": "Exists"} not in spec.get("tolerations", []):
        errors.append("no toleration with operator Exists alone: tainted nodes go unwatched")
    for t in spec.get("tolerations", []):
        if t.get("operator") == "Exists" and "value" in t:
            errors.append("a toleration with operator Exists must not have a value")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    if len(volumes) != len(spec.get("volumes", [])):
        errors.append("duplicate volume names")
    mounted: set[str] = set()
    for c in spec["containers"]:
        errors.extend(check_container(c, volumes, spec, mounted))
    errors.extend(f"volume {name} is not mounted" for name in volumes if name not in mounted)
    return errors


def check_container(c: dict[str, Any], volumes: dict[str, Any], spec: dict[str, Any],
                    mounted: set[str]) -> list[str]:
    errors: list[str] = []
    name = c["name"]
    if not DNS_LABEL.fullmatch(name):
        errors.append(f"container name {name!r} is not a DNS label")
    ports = {p.get("name"): p for p in c.get("ports", [])}
    for port_name, p in ports.items():
        if port_name is not None and not (len(port_name) <= 15 and DNS_LABEL.fullmatch(port_name)
                                          and re.search("[a-z]", port_name)):
            errors.append(f"port name {port_name!r} is not an IANA service name")
        if spec.get("hostNetwork") and p.get("hostPort", p["containerPort"]) != p["containerPort"]:
            errors.append("with hostNetwork, hostPort must equal containerPort")
    metrics = ports.get("metrics")
    if not metrics or metrics["containerPort"] != 10110 or metrics.get("protocol", "TCP") != "TCP":
        errors.append(f"{name}: no TCP port named metrics on 10110")
    for probe in ("livenessProbe", "readinessProbe"):
        get = c.get(probe, {}).get("httpGet")
        if not get or get.get("path") != "/healthz" or get.get("port") != "metrics":
            errors.append(f"{name}: {probe} must be an httpGet of /healthz on port metrics")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        handlers = [h for h in ("httpGet", "tcpSocket", "exec") if h in c.get(probe, {})]
        if probe in c and len(handlers) != 1:
            errors.append(f"{name}: {probe} needs exactly one handler")
        port = c.get(probe, {}).get("httpGet", {}).get("port")
        if isinstance(port, str) and port not in ports:
            errors.append(f"{name}: {probe} names port {port!r}, which the container lacks")
    resources = c.get("resources", {})
    for kind in ("cpu", "memory"):
        request = quantity(resources.get("requests", {}).get(kind, ""))
        limit = quantity(resources.get("limits", {}).get(kind, ""))
        if request is None or limit is None:
            errors.append(f"{name}: {kind} request and limit are both needed")
        elif request > limit:
            errors.append(f"{name}: {kind} request above its limit")
    sc = c.get("securityContext", {})
    if sc.get("readOnlyRootFilesystem") is not True:
        errors.append(f"{name}: readOnlyRootFilesystem must be true")
    if sc.get("allowPrivilegeEscalation") is not False:
        errors.append(f"{name}: allowPrivilegeEscalation must be false")
    if sc.get("privileged") is True:
        errors.append(f"{name}: must not be privileged")
    caps = sc.get("capabilities", {})
    if caps.get("drop") != ["ALL"]:
        errors.append(f"{name}: capabilities must drop [ALL]")
    for cap in caps.get("add", []):
        if cap.startswith("CAP_") or cap not in POD_CAPABILITIES:
            errors.append(f"{name}: capability {cap!r} is not one panicwatch uses")
    paths = [m["mountPath"] for m in c.get("volumeMounts", [])]
    if len(set(paths)) != len(paths):
        errors.append(f"{name}: two mounts at one path")
    for m in c.get("volumeMounts", []):
        mounted.add(m["name"])
        volume = volumes.get(m["name"])
        if volume is None:
            errors.append(f"{name}: volumeMount {m['name']!r} has no volume")
        elif "hostPath" in volume and not (m.get("readOnly") is True
                                           and m.get("mountPropagation") == "HostToContainer"):
            errors.append(f"{name}: host path {m['mountPath']} must be read-only, HostToContainer")
        if m.get("mountPropagation") == "Bidirectional" and sc.get("privileged") is not True:
            errors.append(f"{name}: Bidirectional propagation needs a privileged container")
    errors.extend(check_args(c, paths))
    return errors


def check_args(c: dict[str, Any], mount_paths: list[str]) -> list[str]:
    """The container's command line as panicwatch itself parses it, and its --path.* flags
    pointing at mounted host paths."""
    args = [*c.get("command", []), *c.get("args", [])]
    if not args or args[0] != "serve":
        return [f"{c['name']}: args must start with serve (the image's ENTRYPOINT is panicwatch)"]
    try:
        parsed = build_parser().parse_args(args)
    except SystemExit:
        return [f"{c['name']}: panicwatch rejects {args}"]
    errors = []
    for option in ("path_rootfs", "path_procfs", "path_sysfs"):
        value = getattr(parsed, option, None)
        if value is not None and value not in mount_paths:
            errors.append(f"{c['name']}: {option} {value} is not a volumeMount")
    if getattr(parsed, "path_rootfs", "/") == "/":
        errors.append(f"{c['name']}: --path.rootfs must point at the host's root")
    return errors


def load_daemonset() -> list[Any]:
    return [d for d in yaml.safe_load_all(DAEMONSET.read_text()) if d is not None]


def the(docs: list[Any], kind: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind)


def pod_spec(docs: list[Any]) -> dict[str, Any]:
    spec: dict[str, Any] = the(docs, "DaemonSet")["spec"]["template"]["spec"]
    return spec


def container(docs: list[Any]) -> dict[str, Any]:
    first: dict[str, Any] = pod_spec(docs)["containers"][0]
    return first


def test_daemonset_is_valid() -> None:
    assert check_manifest(load_daemonset()) == []


def _typo(d: list[Any]) -> None:
    sc = container(d)["securityContext"]
    sc["readOnlyRootFileSystem"] = sc.pop("readOnlyRootFilesystem")


def _unquoted_annotation(d: list[Any]) -> None:
    the(d, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] = 10110


MUTATIONS: dict[str, tuple[Callable[[list[Any]], None], str]] = {
    "typo": (_typo, "readOnlyRootFileSystem: unknown field"),
    "no-image": (lambda d: container(d).pop("image"), "image: required"),
    "bad-enum": (lambda d: container(d).update(imagePullPolicy="Sometimes"), "not one of"),
    "unquoted-annotation": (_unquoted_annotation, "map of strings"),
    "selector": (lambda d: the(d, "DaemonSet")["spec"]["selector"]["matchLabels"].update(
        app="other"), "matchLabels"),
    "volume-name": (lambda d: container(d)["volumeMounts"][0].update(name="rootfs"), "no volume"),
    "writable-host": (lambda d: container(d)["volumeMounts"][1].pop("readOnly"), "read-only"),
    "no-hostpid": (lambda d: pod_spec(d).update(hostPID=False), "hostPID"),
    "taint": (lambda d: pod_spec(d).update(tolerations=[{"key": "a", "operator": "Exists"}]),
              "operator Exists alone"),
    "probe-port": (lambda d: container(d)["livenessProbe"]["httpGet"].update(port="http"),
                   "livenessProbe"),
    "probe-path": (lambda d: container(d)["readinessProbe"]["httpGet"].update(path="/metrics"),
                   "readinessProbe"),
    "caps": (lambda d: container(d)["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
             "drop [ALL]"),
    "sys-admin": (lambda d: container(d)["securityContext"]["capabilities"]["add"].append(
        "SYS_ADMIN"), "SYS_ADMIN"),
    "root-fs": (lambda d: container(d)["securityContext"].update(readOnlyRootFilesystem=False),
                "readOnlyRootFilesystem"),
    "no-limits": (lambda d: container(d)["resources"].pop("limits"), "limit are both needed"),
    "bad-flag": (lambda d: container(d)["args"].append("--collector.bogus"), "rejects"),
    "unmounted-path": (lambda d: container(d)["args"].__setitem__(1, "--path.rootfs=/host"),
                       "is not a volumeMount"),
    "port-type": (lambda d: container(d)["ports"][0].update(containerPort="10110"),
                  "expected int"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_daemonset_check_catches(mutation: str) -> None:
    docs = copy.deepcopy(load_daemonset())
    mutate, said = MUTATIONS[mutation]
    mutate(docs)
    errors = check_manifest(docs)
    assert any(said in e for e in errors), errors


# --------------------------------------------------------------------------------------------
# Prometheus
# --------------------------------------------------------------------------------------------

# Debian's promtool is built without Kubernetes service discovery: the block is checked
# here against the upstream configuration reference, the rest by promtool.
K8S_SD = obj(("role",), role=enum("node", "service", "pod", "endpoints", "endpointslice",
                                   "ingress"),
             api_server=str, namespaces=obj(names=STR_LIST, own_namespace=bool),
             selectors=ListOf(obj(("role",), role=enum("node", "service", "pod", "endpoints",
                                                        "endpointslice", "ingress"),
                                  label=str, field=str)),
             kubeconfig_file=str, attach_metadata=obj(node=bool))
POD_META = re.compile(r"__meta_kubernetes_(namespace|pod_(name|ip|node_name|host_ip|uid|phase|ready"
                      r"|controller_kind|controller_name|container_name|container_image"
                      r"|container_port_name|container_port_number|container_port_protocol"
                      r"|container_init|(label|labelpresent|annotation|annotationpresent)_\w+))")


def promtool_check(config: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    promtool = tool("promtool")
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return subprocess.run([promtool, "check", "config", str(path)], capture_output=True,
                          text=True, timeout=120)


def promtool_checkable(config: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any], list[str]]:
    """The config with each kubernetes_sd_configs block checked here and replaced by an
    equivalent file_sd_configs, so that promtool still checks the job and its relabeling."""
    config = copy.deepcopy(config)
    errors: list[str] = []
    targets = tmp_path / "targets.json"
    targets.write_text("[]\n")
    for job in config["scrape_configs"]:
        if "kubernetes_sd_configs" in job:
            conforms(job.pop("kubernetes_sd_configs"), ListOf(K8S_SD),
                     f"{job['job_name']}.kubernetes_sd_configs", errors)
            for relabel in job.get("relabel_configs", []):
                errors.extend(f"{job['job_name']}: {label} is not a pod-role label"
                              for label in relabel.get("source_labels", [])
                              if label.startswith("__meta_") and not POD_META.fullmatch(label))
            job["file_sd_configs"] = [{"files": [str(targets)]}]
    return config, errors


def check_scrape_config(config: dict[str, Any], tmp_path: Path) -> list[str]:
    checkable, errors = promtool_checkable(config, tmp_path)
    as_is = promtool_check(config, tmp_path)
    if as_is.returncode == 0:
        return errors
    output = as_is.stdout + as_is.stderr
    if "field kubernetes_sd_configs not found" not in output:
        return [*errors, output]
    done = promtool_check(checkable, tmp_path)
    return errors + ([done.stdout + done.stderr] if done.returncode else [])


def load_scrape() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(SCRAPE.read_text())
    return config


def test_scrape_config_passes_promtool(tmp_path: Path) -> None:
    assert check_scrape_config(load_scrape(), tmp_path) == []


@pytest.mark.parametrize(("mutate", "said"), [
    (lambda c: c["scrape_configs"][1]["relabel_configs"][0].update(action="kepp"), "kepp"),
    (lambda c: c["scrape_configs"][1]["relabel_configs"][1].update(regex="metrics("), "regex"),
    (lambda c: c["scrape_configs"][0].update(scrape_timeout="60s"), "scrape timeout"),
    (lambda c: c["scrape_configs"][1]["kubernetes_sd_configs"][0].update(role="pods"), "pods"),
    (lambda c: c["scrape_configs"][1]["relabel_configs"][0].update(
        source_labels=["__meta_kubernetes_pod_labels_app"]), "pod-role label"),
], ids=["action", "regex", "timeout", "role", "meta-label"])
def test_scrape_check_catches(tmp_path: Path, mutate: Callable[[dict[str, Any]], None],
                              said: str) -> None:
    config = load_scrape()
    mutate(config)
    errors = check_scrape_config(config, tmp_path)
    assert errors and said in "\n".join(errors), errors


def test_scrape_config_matches_the_daemonset() -> None:
    docs = load_daemonset()
    ds = the(docs, "DaemonSet")
    labels = ds["spec"]["template"]["metadata"]["labels"]
    ports = {p["name"] for p in container(docs)["ports"]}
    jobs = {j["job_name"]: j for j in load_scrape()["scrape_configs"]}
    assert all(re.fullmatch(r"panicwatch.*", name) for name in jobs)  # PanicwatchDown's job=~
    job = jobs["panicwatch-kubernetes"]
    sd = job["kubernetes_sd_configs"][0]
    assert sd["namespaces"]["names"] == [ds["metadata"]["namespace"]]
    for selector in sd.get("selectors", []):
        key, _, value = selector["label"].partition("=")
        assert labels.get(key) == value, selector
    kept = 0
    for relabel in job["relabel_configs"]:
        if relabel.get("action") != "keep":
            continue
        (source,) = relabel["source_labels"]
        if source.startswith("__meta_kubernetes_pod_label_"):
            name = source.removeprefix("__meta_kubernetes_pod_label_")
            value = next(v for k, v in labels.items() if re.sub(r"[^a-zA-Z0-9_]", "_", k) == name)
        else:
            assert source == "__meta_kubernetes_pod_container_port_name"
            value = next(p for p in ports if re.fullmatch(relabel["regex"], p))
        assert re.fullmatch(relabel["regex"], value), relabel
        kept += 1
    assert kept == 2
    static = jobs["panicwatch"]["static_configs"][0]["targets"]
    assert all(t.endswith(":10110") for t in static)


def test_schema_rejects_wrong_types() -> None:
    errors: list[str] = []
    conforms({"hostPID": "true", "containers": []}, POD_SPEC, "spec", errors)
    assert errors == ["spec.hostPID: expected bool, got 'true'"]
