"""The `panicwatch` command: flags built from the Settings model, then one of the commands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from panicwatch import __version__
from panicwatch.settings import ALL_COMMANDS, DEPRECATED, Settings, flag_of, note_deprecated

COMMANDS = {
    "serve": "Run the exporter: /metrics, /healthz and a landing page at /.",
    "metrics": "Collect once and print the metrics in the Prometheus text format, or write them "
               "atomically to --output FILE for node_exporter's textfile collector "
               "(exit 0 written, 2 could not write).",
    "check": "Report panic readiness with the fix for every failed check, and the health of "
             "every NFS mount (exit 0 ready, 1 a critical check failed, 2 could not run, "
             "3 an NFS mount is stalled).",
    "triage": "Name the crash in each dump (or kernel log file) the way kernel developers "
              "do: title, culprit, kernel, stack (exit 0 every input held a crash, 1 some "
              "held none, 2 bad usage or unreadable input).",
    "stress": "The bounded reproducer: worker threads stat (or open, statvfs, readdir) "
              "every file under PATH... until --duration, then a summary "
              "(exit 0 ran, 1 errors seen, 2 bad usage).",
}
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
              "error": logging.ERROR}


class _OldFlag(argparse.Action):
    """A flag's spelling of an older release: does what the current one does, hidden from
    --help, and noted so that the command logs a deprecation once."""

    def __init__(self, option_strings: list[str], dest: str, current: str, kind: str,
                 **kwargs: Any) -> None:
        self.current, self.kind = current, kind
        if kind == "bool":
            option_strings = [*option_strings,
                              *(s.replace("--", "--no-", 1) for s in option_strings)]
            kwargs["nargs"] = 0
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        negated = bool(option_string and option_string.startswith("--no-"))
        note_deprecated(str(option_string),
                        self.current.replace("--", "--no-", 1) if negated else self.current)
        if self.kind == "bool":
            values = not negated
        elif self.kind == "list":
            values = [*getattr(namespace, self.dest, []), values]
        setattr(namespace, self.dest, values)


def _add_flags(parser: argparse.ArgumentParser, command: str | None) -> None:
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra
        assert isinstance(extra, dict)
        commands = extra["commands"]
        assert isinstance(commands, tuple | list)
        if command is None and not set(ALL_COMMANDS) <= set(commands):
            continue
        if command is not None and command not in commands:
            continue
        env = f"PANICWATCH_{name.upper()}"
        default = "" if field.default is None else f"default: {field.default}; "
        help_text = f"{field.description} ({default}env {env})"
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
        kind = "value"
        metavar = str(extra["flag"]).rsplit(".", 1)[-1].replace("-", "_").upper()
        if field.annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
            kind = "bool"
        elif getattr(field.annotation, "__origin__", None) is list:
            kwargs["action"] = "append"
            kwargs["metavar"] = metavar
            kind = "list"
        else:
            kwargs["metavar"] = metavar
        parser.add_argument(flag_of(name), **kwargs)
        if "old_flag" in extra:
            parser.add_argument(f"--{extra['old_flag']}", action=_OldFlag, dest=name,
                                current=flag_of(name), kind=kind, default=argparse.SUPPRESS,
                                help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="panicwatch",
        description="Prometheus exporter: kdump/panic readiness and NFS client health.",
    )
    parser.add_argument("--version", action="version", version=f"panicwatch {__version__}")
    _add_flags(parser, None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command, description in COMMANDS.items():
        command_parser = sub.add_parser(command, help=description, description=description)
        _add_flags(command_parser, command)
        if command == "stress":
            command_parser.add_argument("paths", nargs="+", metavar="PATH",
                                        help="files or directories to walk")
        if command == "triage":
            command_parser.add_argument(
                "paths", nargs="*", metavar="PATH",
                help="a dump directory or a kernel log file (default: every dump in the "
                     "host's crash directory, newest first)")
    return parser


def load_settings(args: argparse.Namespace) -> Settings:
    given = {k: v for k, v in vars(args).items() if k not in ("command", "paths")}
    return Settings(**given)


def _settings_error(error: ValidationError) -> str:
    messages = []
    for e in error.errors():
        field = str(e["loc"][0]) if e["loc"] else ""
        known = field in Settings.model_fields
        where = f"{flag_of(field)} (or PANICWATCH_{field.upper()})" if known else ""
        message = e["msg"].removeprefix("Value error, ")
        messages.append(f"{where}: {message}" if where else message)
    return "; ".join(messages)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args)
    except ValidationError as e:
        parser.exit(2, f"panicwatch: error: {_settings_error(e)}\n")
    except SettingsError as e:
        parser.exit(2, f"panicwatch: error: {e}\n")
    logging.basicConfig(
        stream=sys.stderr, level=LOG_LEVELS[settings.log_level],
        format='time=%(asctime)s level=%(levelname)s source=%(name)s msg="%(message)s"',
    )
    for message in DEPRECATED:
        logging.getLogger("panicwatch").warning(message)
    if args.command == "serve":
        from panicwatch.web.serve import serve

        serve(settings)
        return 0
    if args.command == "stress":
        from panicwatch.stress import run_stress

        return run_stress(settings, args.paths)
    if args.command == "triage":
        from panicwatch.triage.command import run_triage

        return run_triage(settings, args.paths)
    if args.command == "metrics":
        return run_metrics(settings)
    return run_check(settings)


def run_metrics(settings: Settings) -> int:
    from panicwatch.collectors.registry import build_registry
    from panicwatch.exposition import render
    from panicwatch.textfile import write_atomically

    page = render(build_registry(settings))
    if settings.metrics_output is None:
        for chunk in page:
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        return 0
    try:
        write_atomically(settings.metrics_output, page)
    except OSError as e:
        print(f"panicwatch metrics: cannot write {settings.metrics_output}: {e.strerror or e}",
              file=sys.stderr)
        return 2
    return 0


def run_check(settings: Settings) -> int:
    from panicwatch.collectors.registry import host_of
    from panicwatch.readiness.checks import assess
    from panicwatch.readiness.nfs import NfsCheck
    from panicwatch.readiness.report import as_json, as_text

    host = host_of(settings)
    nfs_check = None
    try:
        # the NFS probes first: their deadline runs while readiness is assessed
        nfs_check = NfsCheck(host, pid=settings.collector_nfs_mountstats_pid,
                             extra=[str(p) for p in settings.collector_canary_path],
                             timeout=settings.check_timeout)
        report = assess(host, settings.collector_kdump_min_free_ratio)
        if not report.complete:
            print("panicwatch check: could not run: " + "; ".join(report.problems or ["no input"]),
                  file=sys.stderr)
            return 2
        nfs = nfs_check.finish()
    except Exception as e:  # a report that cannot be made is exit 2, not a traceback
        logging.getLogger("panicwatch").debug("check failed", exc_info=True)
        print(f"panicwatch check: could not run: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    finally:
        if nfs_check is not None:
            nfs_check.cancel()  # probes still out when leaving early; nothing after finish
    if settings.format == "json":
        sys.stdout.write(as_json(report, nfs))
    else:
        sys.stdout.write(as_text(report, str(settings.path_rootfs), nfs))
    sys.stdout.flush()
    # A stall outranks readiness: it is the lockup on its way, now.
    return 3 if nfs.stalled else 0 if report.ready else 1
