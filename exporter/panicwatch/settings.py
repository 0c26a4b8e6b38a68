"""All configuration: one pydantic-settings model.

Every field is an environment variable ``PANICWATCH_<FIELD>`` (pydantic-settings)
and a node_exporter-style flag named in the field's ``flag`` metadata; cli.py
builds the argument parser from this model, so a new option is added here once. A
collector's options sit under its flag (``--collector.rpc.stuck-threshold``); the names of
older releases (``old_flag``, ``old_env``) still work, hidden, and are noted in
``DEPRECATED`` for the command to log once.
"""

from __future__ import annotations

from pathlib import Path
from re import Pattern
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ALL_COMMANDS = ("serve", "metrics", "check")
# Commands that read the host (triage reads its crash directory) but collect nothing.
HOST_COMMANDS = (*ALL_COMMANDS, "triage")
SCRAPE_COMMANDS = ("serve", "metrics")


def option(default: Any, flag: str, help: str, commands: tuple[str, ...] = ALL_COMMANDS, *,
           old_flag: str | None = None, old_env: str | None = None) -> Any:
    """A settings field that also knows its command-line flag and where it applies, and the
    spellings of older releases, still accepted (hidden, with a deprecation logged once)."""
    extra: dict[str, Any] = {"flag": flag, "commands": commands}
    if old_flag:
        extra["old_flag"] = old_flag
    if old_env:
        extra["old_env"] = old_env
    return Field(default, description=help, json_schema_extra=extra)


# Old spellings met while loading the settings, each once: "OLD is deprecated: use NEW".
DEPRECATED: list[str] = []


def note_deprecated(old: str, new: str) -> None:
    message = f"{old} is deprecated: use {new}"
    if message not in DEPRECATED:
        DEPRECATED.append(message)


class OldEnvNames(EnvSettingsSource):
    """The environment variable names of older releases (a field's ``old_env``), taken only
    where the current name is not set."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        extra = field.json_schema_extra
        old = extra.get("old_env") if isinstance(extra, dict) else None
        current = f"PANICWATCH_{field_name.upper()}"
        if isinstance(old, str) and current.lower() not in self.env_vars:
            value = self.env_vars.get(old.lower())
            if value is not None:
                note_deprecated(old, current)
                return value, field_name, self.field_is_complex(field)
        return None, field_name, False


def collector_option(name: str, help: str) -> Any:
    return option(True, f"collector.{name}", f"Enable the {name} collector: {help}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PANICWATCH_", extra="forbid")

    web_listen_address: str = option(
        ":10110", "web.listen-address", "Address to listen on for HTTP requests.", ("serve",)
    )
    web_telemetry_path: str = option(
        "/metrics", "web.telemetry-path", "Path under which to expose metrics.", ("serve",)
    )
    web_config_file: Path | None = option(
        None, "web.config.file",
        "Path to an exporter-toolkit web config file (YAML) for TLS, basic auth and "
        "response headers; re-read when it changes.", ("serve",)
    )
    path_rootfs: Path = option(
        Path("/"), "path.rootfs", "Root of the host's filesystem (e.g. /host in a container).",
        HOST_COMMANDS)
    path_procfs: Path | None = option(
        None, "path.procfs", "procfs mount point (default: <path.rootfs>/proc).", HOST_COMMANDS)
    path_sysfs: Path | None = option(
        None, "path.sysfs", "sysfs mount point (default: <path.rootfs>/sys).", HOST_COMMANDS)
    log_level: Literal["debug", "info", "warn", "error"] = option(
        "info", "log.level", "Only log messages with the given severity or above.",
        HOST_COMMANDS)
    collector_kdump: bool = collector_option("kdump", "crash kernel, reservation, dump target.")
    collector_kdump_min_free_ratio: float = option(
        0.1, "collector.kdump.min-free-ratio",
        "Free space the dump target needs, as a fraction of RAM (a makedumpfile -d 31 "
        "dump is typically 1-10%% of RAM).",
        old_flag="kdump.min-free-ratio", old_env="PANICWATCH_KDUMP_MIN_FREE_RATIO")
    collector_vmcores: bool = collector_option("vmcores", "dumps waiting in the crash dir.")
    collector_kernel: bool = collector_option("kernel", "panic sysctls, lockup counters, pstore.")
    collector_readiness: bool = collector_option("readiness", "the panic readiness checks.")
    collector_nfs: bool = collector_option("nfs", "NFS client statistics from mountstats.")
    collector_nfs_mountstats_pid: str = option(
        "self", "collector.nfs.mountstats-pid",
        "Whose /proc/<pid>/mountstats to read: mount statistics are per mount namespace, so "
        "in a container with the host's PID namespace use 1.",
        old_env="PANICWATCH_NFS_MOUNTSTATS_PID")
    collector_nfs_mount_include: Pattern[str] | None = option(
        None, "collector.nfs.mount-include",
        "Regex: only NFS mount points it matches (unanchored, as node_exporter's).",
        SCRAPE_COMMANDS, old_env="PANICWATCH_NFS_MOUNT_INCLUDE")
    collector_nfs_mount_exclude: Pattern[str] | None = option(
        None, "collector.nfs.mount-exclude", "Regex: leave out NFS mount points it matches.",
        SCRAPE_COMMANDS, old_env="PANICWATCH_NFS_MOUNT_EXCLUDE")
    collector_nfs_op_include: Pattern[str] | None = option(
        None, "collector.nfs.op-include",
        "Regex: only NFS operations it matches (e.g. '^(READ|WRITE|GETATTR)$').",
        SCRAPE_COMMANDS, old_env="PANICWATCH_NFS_OP_INCLUDE")
    collector_nfs_op_exclude: Pattern[str] | None = option(
        None, "collector.nfs.op-exclude", "Regex: leave out NFS operations it matches.",
        SCRAPE_COMMANDS, old_env="PANICWATCH_NFS_OP_EXCLUDE")
    collector_nfs_all_ops: bool = option(
        False, "collector.nfs.all-ops",
        "Export every operation, not only the common ones and those in use.", SCRAPE_COMMANDS,
        old_env="PANICWATCH_NFS_ALL_OPS")
    collector_nfs_op_bytes: bool = option(
        False, "collector.nfs.op-bytes", "Also export bytes sent and received per operation.",
        SCRAPE_COMMANDS, old_env="PANICWATCH_NFS_OP_BYTES")
    collector_nfs_events: bool = option(
        False, "collector.nfs.events",
        "Also export the per-mount NFS event counters (VFS calls, invalidations, ...).",
        SCRAPE_COMMANDS, old_env="PANICWATCH_NFS_EVENTS")
    collector_nfs_per_transport: bool = option(
        False, "collector.nfs.per-transport",
        "Export transport counters per connection (nconnect) instead of summed per mount.",
        SCRAPE_COMMANDS, old_env="PANICWATCH_NFS_PER_TRANSPORT")
    collector_rpc: bool = collector_option(
        "rpc", "the NFS client's RPC layer: call totals (/proc/net/rpc/nfs), transport queues "
        "(sysfs) and tasks in flight (debugfs sunrpc: root and a mounted debugfs).")
    collector_rpc_stuck_threshold: float = option(
        30.0, "collector.rpc.stuck-threshold",
        "Seconds after which an RPC task still in flight counts as stuck.", SCRAPE_COMMANDS,
        old_flag="rpc.stuck-threshold", old_env="PANICWATCH_RPC_STUCK_THRESHOLD")
    collector_nfs_sockets: bool = collector_option(
        "nfs_sockets", "TCP state of the connections to NFS servers (netlink inet_diag).")
    collector_nfs_sockets_netns: Path | None = option(
        None, "collector.nfs_sockets.netns",
        "Network namespace to read them from, e.g. /host/proc/1/ns/net in a container "
        "without the host's network (default: our own).", SCRAPE_COMMANDS,
        old_env="PANICWATCH_NFS_SOCKETS_NETNS")
    collector_blocked_tasks: bool = collector_option(
        "blocked_tasks", "threads in D state by what they wait on (nfs, rpc, other).")
    collector_kernel_log: bool = option(
        True, "collector.kernel_log",
        "Enable the kernel_log collector: a thread reading /dev/kmsg for NFS 'not "
        "responding', lockups, hung tasks, oopses and warnings (needs root).", ("serve",),
        old_flag="collector.kernel-log")
    collector_canary: bool = option(
        True, "collector.canary",
        "Enable the canary collector: a thread per NFS mount (and --collector.canary.path) "
        "probing it, and the scheduler-lag ticker.", ("serve",))
    collector_canary_interval: float = option(
        10.0, "collector.canary.interval",
        "Seconds between probes of one target (jittered by up to 10%%).", ("serve",),
        old_flag="canary.interval", old_env="PANICWATCH_CANARY_INTERVAL")
    collector_canary_timeout: float = option(
        5.0, "collector.canary.timeout",
        "Seconds after which an unanswered probe counts as a timeout.", ("serve",),
        old_flag="canary.timeout", old_env="PANICWATCH_CANARY_TIMEOUT")
    collector_canary_path: list[Path] = option(
        [], "collector.canary.path",
        "Extra path to probe, on any filesystem (repeat the flag for more; env: a JSON "
        "list). NFS mounts are found by themselves. check probes them too.", ("serve", "check"),
        old_flag="canary.path", old_env="PANICWATCH_CANARY_PATH")
    collector_canary_stat_file: str | None = option(
        None, "collector.canary.stat-file",
        "Also stat this file (relative to each target) after statvfs, e.g. a file kept "
        "there for the purpose.", ("serve",),
        old_flag="canary.stat-file", old_env="PANICWATCH_CANARY_STAT_FILE")
    collector_canary_max_targets: int = option(
        100, "collector.canary.max-targets",
        "Most targets probed at once (one thread each); more are logged and left out.",
        ("serve",), old_flag="canary.max-targets", old_env="PANICWATCH_CANARY_MAX_TARGETS")
    collector_canary_discovery_interval: float = option(
        30.0, "collector.canary.discovery-interval",
        "Seconds between looks at the mount table for NFS mounts that came or went.",
        ("serve",), old_flag="canary.discovery-interval",
        old_env="PANICWATCH_CANARY_DISCOVERY_INTERVAL")
    collector_canary_scheduler_tick: float = option(
        0.1, "collector.canary.scheduler-tick",
        "Period of the scheduler-lag ticker in seconds (0 turns it off).", ("serve",),
        old_flag="canary.scheduler-tick", old_env="PANICWATCH_CANARY_SCHEDULER_TICK")
    stress_workers: int = option(
        8, "workers", "Worker threads walking the paths.", ("stress",))
    stress_duration: float = option(
        60.0, "duration", "Seconds to run: a hard cap.", ("stress",))
    stress_max_duration: float = option(
        600.0, "max-duration", "Longest --duration accepted without --force.", ("stress",))
    stress_force: bool = option(
        False, "force", "Accept a --duration above --max-duration.", ("stress",))
    stress_op: Literal["stat", "open", "statvfs", "readdir"] = option(
        "stat", "op", "What each worker does to every path it walks.", ("stress",))
    metrics_output: Path | None = option(
        None, "output",
        "Write the page to this file instead of stdout, atomically (a temporary file beside it, "
        "then a rename), for node_exporter's textfile collector: name it *.prom.", ("metrics",))
    check_timeout: float = option(
        5.0, "check.timeout",
        "Seconds each NFS mount (and --collector.canary.path) has to answer a statvfs before it "
        "counts as stalled; the command returns within this and about a second.", ("check",))
    format: Literal["text", "json"] = option(
        "text", "format", "Output format of the report (triage: json is one object per "
        "line).", ("check", "triage")
    )
    triage_extract: bool = option(
        False, "extract", "For a dump without a saved kernel log, extract it from the vmcore "
        "with makedumpfile --dump-dmesg (or vmcore-dmesg) and save it beside the dump.",
        ("triage",))

    @field_validator("web_listen_address")
    @classmethod
    def _listen_address(cls, value: str) -> str:
        parse_listen_address(value)
        return value

    @field_validator("web_telemetry_path")
    @classmethod
    def _telemetry_path(cls, value: str) -> str:
        if not value.startswith("/") or value == "/":
            raise ValueError("must start with / and not be / itself")
        return value

    @field_validator("collector_nfs_mountstats_pid")
    @classmethod
    def _pid(cls, value: str) -> str:
        if value != "self" and not (value.isdecimal() and int(value) > 0):
            raise ValueError("must be self or a process ID")
        return value

    @field_validator("collector_canary_interval", "collector_canary_timeout",
                     "collector_canary_discovery_interval", "collector_rpc_stuck_threshold",
                     "stress_duration", "stress_max_duration", "check_timeout")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("must be greater than 0")
        return value

    @field_validator("collector_canary_scheduler_tick")
    @classmethod
    def _tick(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must be 0 (off) or more")
        return value

    @field_validator("collector_canary_max_targets", "stress_workers")
    @classmethod
    def _count(cls, value: int) -> int:
        if not 1 <= value <= 10_000:
            raise ValueError("must be between 1 and 10000")
        return value

    @model_validator(mode="after")
    def _stress_cap(self) -> Settings:
        if self.stress_duration > self.stress_max_duration and not self.stress_force:
            raise ValueError(f"--duration {self.stress_duration:g} is above --max-duration "
                             f"{self.stress_max_duration:g}; add --force to run that long")
        return self

    @field_validator("collector_kdump_min_free_ratio")
    @classmethod
    def _ratio(cls, value: float) -> float:
        if not 0 <= value <= 1:
            raise ValueError("must be between 0 and 1")
        return value

    @model_validator(mode="after")
    def _paths_exist(self) -> Settings:
        for name in ("path_rootfs", "path_procfs", "path_sysfs"):
            path = getattr(self, name)
            if path is not None and not path.is_dir():
                raise ValueError(f"{flag_of(name)}: {path} is not a directory")
        return self

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # flags, then the current variable names, then the old ones
        return (init_settings, env_settings, OldEnvNames(settings_cls), dotenv_settings,
                file_secret_settings)

    def collector_enabled(self, name: str) -> bool:
        return bool(getattr(self, f"collector_{name}"))


def flag_of(field_name: str) -> str:
    extra = Settings.model_fields[field_name].json_schema_extra
    assert isinstance(extra, dict)
    return f"--{extra['flag']}"


def parse_listen_address(value: str) -> tuple[str, int]:
    """Split node_exporter's ``[host]:port`` form; an empty host means all addresses."""
    host, sep, port = value.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not [host]:port with a port 0-65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)
