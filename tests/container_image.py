"""Build the Dockerfile and run the image with buildah, offline, for test_container_image.py.

There is no Docker engine on these machines and no registry to pull a base image from, and
``podman run`` cannot start a container here (crun cannot raise rlimits, and the cgroup
layout is hybrid). What works: a minimal Debian root made with debootstrap, imported as a
local base image; ``buildah bud --isolation chroot`` to build the Dockerfile on it; and
``buildah run --isolation chroot`` to run commands in the result. Chroot isolation shares the
host's network, so a server started in the image is scraped on 127.0.0.1.

The base image is cached in buildah's storage under a tag derived from its recipe, so only
the first run pays for debootstrap; the wheels directory is cached by the pytest cache,
keyed by pyproject.toml. Every command here has a timeout.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# What .ci/run installs; buildah alone suffices (the base is imported with `buildah add`).
APT_PACKAGES = ("buildah", "debootstrap")

DEBIAN_SUITE = "bookworm"  # python3 3.11, as the wheels below (built by this interpreter)
DEBIAN_PYTHON = (3, 11)
DEBIAN_MIRROR = os.environ.get("PANICWATCH_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = ("python3", "python3-venv")
# Bump to rebuild every cached base after a change to how it is made.
BASE_RECIPE = {"version": 1, "suite": DEBIAN_SUITE, "variant": "minbase",
               "include": BASE_PACKAGES, "mirror": DEBIAN_MIRROR}
BASE_REPOSITORY = "localhost/panicwatch-test-base"

# buildah's defaults ask for rlimits above what this sandbox allows.
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000")
ISOLATION = ("--isolation", "chroot")
# What the Dockerfile reads from its context, besides wheels/.
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md")
CONTEXT_DIRS = ("exporter",)


class Unavailable(Exception):
    """The tools cannot be had here: the tests that need them skip, saying why."""


class CommandFailed(AssertionError):
    def __init__(self, args: Sequence[str], returncode: int | None, output: str) -> None:
        super().__init__(f"{' '.join(args)} exited {returncode}:\n{output[-4000:]}")
        self.returncode = returncode
        self.output = output


def run(args: Sequence[str], timeout: float, check: bool = True,
        **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A command with its output captured; a failure carries the output's tail."""
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                              **kwargs)
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise CommandFailed(args, None, f"timed out after {timeout} s\n{output}") from None
    if check and done.returncode != 0:
        raise CommandFailed(args, done.returncode, done.stdout + done.stderr)
    return done


def ensure_tools() -> None:
    """buildah and debootstrap, installed with apt-get if missing (root only)."""
    if all(shutil.which(tool) for tool in APT_PACKAGES):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable(f"{' and '.join(APT_PACKAGES)} are needed and cannot be installed "
                          "here (apt-get as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        run(["apt-get", "update", "-qq"], timeout=300, env=env)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES],
            timeout=900, env=env)
    except CommandFailed as e:
        raise Unavailable(f"installing {' '.join(APT_PACKAGES)} failed: {e}") from None
    if not all(shutil.which(tool) for tool in APT_PACKAGES):
        raise Unavailable(f"{' '.join(APT_PACKAGES)} still missing after apt-get install")


def image_exists(ref: str) -> bool:
    return run(["buildah", "inspect", "--type", "image", ref], timeout=60,
               check=False).returncode == 0


def base_image_ref() -> str:
    recipe = json.dumps(BASE_RECIPE, sort_keys=True).encode()
    return f"{BASE_REPOSITORY}:{hashlib.sha256(recipe).hexdigest()[:16]}"


def base_image(workdir: Path) -> tuple[str, bool]:
    """The Debian base (python3 + venv, no pip, no network needed later) and whether it was
    built just now rather than found in buildah's storage."""
    ref = base_image_ref()
    if image_exists(ref):
        return ref, False
    if os.geteuid() != 0:
        raise Unavailable("debootstrap needs root to build the base image")
    rootfs, tarball = workdir / "rootfs", workdir / "rootfs.tar"
    try:
        run(["debootstrap", f"--variant={BASE_RECIPE['variant']}",
             f"--include={','.join(BASE_PACKAGES)}", DEBIAN_SUITE, str(rootfs), DEBIAN_MIRROR],
            timeout=1200)
        # The downloaded .debs and package lists are half the tree and no use in an image.
        run(["tar", "-C", str(rootfs), "--exclude=./var/cache/apt/archives/*.deb",
             "--exclude=./var/lib/apt/lists/*", "-cf", str(tarball), "."], timeout=600)
        container = run(["buildah", "from", "scratch"], timeout=60).stdout.strip()
        try:
            run(["buildah", "add", "--quiet", container, str(tarball), "/"], timeout=600)
            run(["buildah", "commit", "--quiet", container, ref], timeout=600)
        finally:
            run(["buildah", "rm", container], timeout=60, check=False)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
        tarball.unlink(missing_ok=True)
    return ref, True


def wheels(cache: Path) -> Path:
    """``pip wheel`` of the project's dependencies and build backend, as the README tells
    users to make it, kept between runs until pyproject.toml changes."""
    if sys.version_info[:2] != DEBIAN_PYTHON:
        raise Unavailable(f"the wheels are built by this interpreter ({sys.version.split()[0]}), "
                          f"the {DEBIAN_SUITE} base runs Python {'.'.join(map(str, DEBIAN_PYTHON))}")
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes()
                         + sys.version.encode()).hexdigest()[:16]
    target = cache / f"wheels-{key}"
    if (target / ".complete").exists():
        return target
    partial = cache / f"wheels-{key}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(partial), str(REPO),
         "setuptools>=68", "wheel"], timeout=900)
    (partial / ".complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def build_context(dest: Path, wheel_dir: Path | None) -> Path:
    """The repository files the Dockerfile reads, and a wheels/ directory (empty if None)."""
    dest.mkdir(parents=True)
    for name in CONTEXT_FILES:
        shutil.copy2(REPO / name, dest / name)
    for name in CONTEXT_DIRS:
        shutil.copytree(REPO / name, dest / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    if wheel_dir is None:
        (dest / "wheels").mkdir()
    else:
        shutil.copytree(wheel_dir, dest / "wheels", ignore=shutil.ignore_patterns(".complete"))
    return dest


def build_image(context: Path, base: str, tag: str,
                timeout: float = 900) -> subprocess.CompletedProcess[str]:
    # Docker format: the OCI image config has no HEALTHCHECK, buildah would drop it.
    return run(["buildah", "bud", *ISOLATION, *ULIMITS, "--format", "docker", "--pull-never",
                "--build-arg", f"BASE={base}", "-t", tag, str(context)],
               timeout=timeout)


def remove_image(ref: str) -> None:
    run(["buildah", "rmi", "--force", ref], timeout=120, check=False)


def image_config(ref: str) -> dict[str, Any]:
    """The Docker-format config: User, ExposedPorts, Entrypoint, Cmd, Healthcheck, Env."""
    inspected = json.loads(run(["buildah", "inspect", "--type", "image", ref], timeout=60).stdout)
    config: dict[str, Any] = inspected["Docker"]["config"]
    return config


class Container:
    """A buildah working container of an image; commands run in it as the image's USER."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.name = ""

    def __enter__(self) -> Container:
        self.name = run(["buildah", "from", "--pull-never", *ULIMITS, self.image],
                        timeout=120).stdout.strip()
        return self

    def __exit__(self, *exc: object) -> None:
        run(["buildah", "rm", self.name], timeout=120, check=False)

    def command(self, args: Sequence[str], mounts: dict[Path, str] | None = None,
                env: dict[str, str] | None = None) -> list[str]:
        options: list[str] = []
        for source, target in (mounts or {}).items():
            options += ["-v", f"{source}:{target}:ro"]
        for name, value in (env or {}).items():
            options += ["--env", f"{name}={value}"]
        return ["buildah", "run", *ISOLATION, *options, self.name, "--", *args]

    def run(self, args: Sequence[str], timeout: float = 60, check: bool = True,
            **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run(self.command(args, **kwargs), timeout=timeout, check=check)

    @contextmanager
    def background(self, args: Sequence[str], **kwargs: Any) -> Iterator[subprocess.Popen[str]]:
        """A long-running command, always stopped on exit: buildah's runtime helpers and the
        process in the image share one new process group, which is signalled as a whole."""
        proc = subprocess.Popen(self.command(args, **kwargs), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[str], grace: float = 10) -> None:
    if proc.poll() is None:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    # Helpers left in the group after the leader exited: the kernel does not hand out a
    # PID still in use as a process group ID, so this reaches only our own group.
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.stdout:
        proc.stdout.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_http(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                response.read()
            return
        except OSError:
            if proc.poll() is not None:
                output = proc.stdout.read() if proc.stdout else ""
                raise AssertionError(f"the server exited {proc.returncode}:\n{output}") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.2)


def fetch(url: str, timeout: float = 30) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


def readable_by_all(root: Path) -> None:
    """The image's user is not root: the fixture tree must be world-readable, as a host's
    /proc, /sys and /etc mostly are."""
    for path in (root, *root.rglob("*")):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode | (0o555 if path.is_dir() else 0o444))
