"""The Dockerfile, built for real and offline, and the image serving a fixture host.

buildah builds the image on a local Debian base (python3 + python3-venv, no pip from an
index) from a build context holding the repository files and a wheels/ directory, then
runs `panicwatch serve` in it with a fixture root mounted at /host and scrapes it over
loopback. See container_image.py for why buildah with chroot isolation.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import container_image as ci
import trees
from conftest import scrape_text, value
from panicwatch import __version__
from trees import MiB

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> str:
    try:
        ci.ensure_tools()
        started = time.monotonic()
        ref, built = ci.base_image(tmp_path_factory.mktemp("base"))
    except ci.Unavailable as e:
        pytest.skip(str(e))
    if built:
        print(f"built base image {ref} in {time.monotonic() - started:.0f} s")
    return ref


@pytest.fixture(scope="module")
def image(base: str, request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        wheel_dir = ci.wheels(request.config.cache.mkdir("panicwatch-image-wheels"))
    except ci.Unavailable as e:
        pytest.skip(str(e))
    context = ci.build_context(tmp_path_factory.mktemp("image") / "context", wheel_dir)
    tag = f"localhost/panicwatch:test-{uuid.uuid4().hex[:12]}"
    try:
        ci.build_image(context, base, tag)
        yield tag
    finally:
        ci.remove_image(tag)


@pytest.fixture
def container(image: str) -> Iterator[ci.Container]:
    with ci.Container(image) as c:
        yield c


@pytest.fixture(scope="module")
def host_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = trees.build("rhel9_armed", tmp_path_factory.mktemp("host") / "root")
    ci.readable_by_all(root)
    return root


@pytest.fixture(scope="module")
def served(image: str, host_root: Path) -> Iterator[tuple[str, ci.Container]]:
    """`panicwatch serve` in the image as the container would start it (as the image's user),
    against the fixture host at /host, on a free loopback port."""
    port = ci.free_port()
    address = f"127.0.0.1:{port}"
    with ci.Container(image) as c, c.background(
            ["panicwatch", "serve", "--path.rootfs=/host", f"--web.listen-address={address}"],
            mounts={host_root: "/host"}) as proc:
        ci.wait_for_http(f"http://{address}/healthz", proc)
        yield f"http://{address}", c


def test_image_config(image: str) -> None:
    config = ci.image_config(image)
    user = config["User"]
    assert user.split(":")[0] not in ("", "0", "root"), user
    assert "10110/tcp" in config["ExposedPorts"]
    assert config["Entrypoint"] == ["panicwatch"]
    assert config["Cmd"] == ["serve"]
    check = config["Healthcheck"]["Test"]
    assert check[0] == "CMD" and "/healthz" in check[-1]
    assert config["Healthcheck"]["Timeout"] < config["Healthcheck"]["Interval"]


def test_runs_as_the_unprivileged_user(container: ci.Container) -> None:
    assert container.run(["id", "-u"]).stdout.strip() == "10110"
    assert container.run(["id", "-g"]).stdout.strip() == "10110"


def test_runtime_stage_has_no_build_leftovers(container: ci.Container) -> None:
    # Neither the wheels, the source nor pip reach the runtime image.
    for path in ("/wheels", "/src", "/dist", "/opt/panicwatch/bin/pip"):
        assert container.run(["test", "-e", path], check=False).returncode == 1, path
    assert container.run(["python3", "-m", "pip", "--version"], check=False).returncode != 0
    assert container.run(["panicwatch", "--version"]).stdout.strip() == f"panicwatch {__version__}"


def test_serves_the_fixture_host(served: tuple[str, ci.Container]) -> None:
    url, container = served
    status, body = ci.fetch(url + "/healthz")
    assert (status, body) == (200, "ok\n")
    status, text = ci.fetch(url + "/metrics")
    assert status == 200
    s = scrape_text(text)

    def p(name: str) -> str:
        return "panicwatch_" + name

    image_python = container.run(
        ["python3", "-c", "import platform; print(platform.python_version())"]).stdout.strip()
    assert value(s, p("build_info"), version=__version__, pythonversion=image_python) == 1
    for collector in ("kdump", "vmcores", "kernel", "readiness", "nfs", "rpc", "nfs_sockets",
                      "blocked_tasks"):
        assert value(s, p("collector_success"), collector=collector) == 1, collector
    assert value(s, p("kdump_loaded")) == 1
    assert value(s, p("kdump_crash_memory_reserved_bytes")) == 256 * MiB
    assert value(s, p("kdump_crash_memory_requested_bytes")) == 256 * MiB
    assert value(s, p("kdump_service_enabled")) == 1
    assert value(s, p("kdump_dump_target_info"), path="/var/crash", type="local") == 1
    assert value(s, p("kdump_test_success")) == 1
    assert value(s, p("kdump_test_timestamp_seconds")) == 1714521600.123456789
    assert value(s, p("vmcores")) == 0
    assert value(s, p("pstore_records"), backend="efi_pstore", type="dmesg") == 2
    assert value(s, p("kernel_panic_setting"), setting="softlockup_panic") == 1
    assert value(s, p("pressure_io_stalled_seconds_total"), kind="some") == 123.456789
    # The fixture host has no /dev/kmsg and no debugfs: said, not failed.
    assert value(s, p("kernel_log_reading")) == 0
    assert value(s, p("rpc_debugfs_available")) == 0


def test_healthcheck_command(image: str, served: tuple[str, ci.Container]) -> None:
    url, container = served
    check = ci.image_config(image)["Healthcheck"]["Test"][1:]
    up = url.rpartition("/")[2]  # 127.0.0.1:port, as PANICWATCH_WEB_LISTEN_ADDRESS would say
    assert container.run(check, env={"PANICWATCH_WEB_LISTEN_ADDRESS": up}).returncode == 0
    down = f"127.0.0.1:{ci.free_port()}"
    failed = container.run(check, env={"PANICWATCH_WEB_LISTEN_ADDRESS": down}, check=False)
    assert failed.returncode != 0


def test_build_never_reaches_for_an_index(base: str, tmp_path: Path) -> None:
    # With no wheels the build must fail at the first pip step, not download what is missing.
    context = ci.build_context(tmp_path / "context", None)
    tag = f"localhost/panicwatch:test-nowheels-{uuid.uuid4().hex[:12]}"
    try:
        with pytest.raises(ci.CommandFailed) as failure:
            ci.build_image(context, base, tag, timeout=600)
        assert "No matching distribution found for setuptools>=68" in failure.value.output
    finally:
        ci.remove_image(tag)
