"""Fuzzing the parsers of small host files: mountinfo (whose failures safepath depends on to
fail safe), procfs (single values, meminfo, iomem, PSI) and the kdump configuration formats.

For each: arbitrary text never raises anything but ParseError, and text written the way the
kernel or the distribution writes it comes back exactly, also between garbage lines.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from panicwatch.host import Host
from panicwatch.parsers import kdump_config, procfs
from panicwatch.parsers import mountinfo as mountinfo_parser
from panicwatch.parsers.kdump_config import DumpTarget
from panicwatch.parsers.mountinfo import Mount, mount_of, parse_mountinfo
from panicwatch.parsers.procfs import IomemRange, ParseError
from panicwatch.reader import HostReader
from panicwatch.safepath import UnsafePath, resolve_safely
from panicwatch.snapshots.mounts import read_mounts

MANY = settings(max_examples=600, deadline=None)
# Text made of what these formats are sensitive to, and anything at all.
TRICKY = st.text(alphabet=st.sampled_from(" \t\n\r\\:=-#\"'$`;0123456789abcdefx²٣\u2028\x00é/"),
                 max_size=80)
ANY = st.one_of(st.text(max_size=200), TRICKY)

# --- mountinfo -----------------------------------------------------------------------------------


def kernel_escape(text: str) -> str:
    """seq_escape(" \\t\\n\\\\") as show_mountinfo writes the root, mount point and source."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in text)


path_text = st.text(min_size=1, max_size=30).filter(lambda t: "\x00" not in t)
token = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=" \t\n\r"
                                        "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
                min_size=1, max_size=12).filter(lambda t: not t.isspace() and t != "-")
mount = st.builds(
    Mount, mount_id=st.integers(0, 2**31), root=path_text.map(lambda p: "/" + p),
    mountpoint=path_text.map(lambda p: "/" + p),
    fstype=st.sampled_from(["xfs", "nfs4", "nfs", "fuse.sshfs", "cifs", "tmpfs", "autofs"]),
    source=path_text, options=st.just("rw,relatime"), super_options=token)


def mountinfo_line(m: Mount, optional: str = "shared:1") -> str:
    return (f"{m.mount_id} 1 0:42 {kernel_escape(m.root)} {kernel_escape(m.mountpoint)} {m.options} "
            f"{optional} - {m.fstype} {kernel_escape(m.source)} {m.super_options}\n")


@MANY
@given(ANY)
def test_mountinfo_takes_any_text(text):
    mounts, skipped = parse_mountinfo(text)
    lines = [line for line in text.split("\n") if line.strip()]
    assert len(mounts) + skipped == len(lines)


@MANY
@given(st.lists(mount, max_size=8), st.sampled_from(["", "shared:1", "master:4 propagate_from:2"]))
def test_mountinfo_lines_come_back_exactly(mounts, optional):
    assert parse_mountinfo("".join(mountinfo_line(m, optional) for m in mounts)) == (mounts, 0)


garbage_line = st.text(max_size=60).filter(lambda t: " - " not in t and "\n" not in t and t.strip())


@MANY
@given(st.lists(st.one_of(mount, garbage_line), max_size=10))
def test_a_garbled_line_is_counted_never_misread(lines):
    """What safepath relies on: a line that is not a mount is reported (then the whole table
    is refused and nothing is touched), and the good lines around it are read exactly."""
    text = "".join(mountinfo_line(x) if isinstance(x, Mount) else x + "\n" for x in lines)
    mounts, skipped = parse_mountinfo(text)
    assert mounts == [x for x in lines if isinstance(x, Mount)]
    assert skipped == sum(not isinstance(x, Mount) for x in lines)


def test_a_garbled_mount_table_is_refused_whole(tmp_path):
    (tmp_path / "proc/1").mkdir(parents=True)
    good = mountinfo_line(Mount(1, "/", "/", "xfs", "/dev/vda1", "rw", "rw"))
    (tmp_path / "proc/1/mountinfo").write_text(good + "40 22 0:45 / /mnt/nfs rw shared:1 nfs4\n")
    reader = HostReader(Host.from_paths(tmp_path))
    assert read_mounts(reader) is None
    assert reader.problems == [f"{tmp_path}/proc/1/mountinfo: 1 unreadable lines or over "
                               "67108864 bytes"]


@pytest.fixture(scope="module")
def host_with_nfs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Host, list[Mount]]:
    """/var/crash local; /mnt/nfs an NFS mount; /var/link -> /mnt/nfs/sub; /var/up -> ../mnt."""
    root = tmp_path_factory.mktemp("safepath")
    for d in ("var/crash", "mnt/nfs/sub", "mnt/local"):
        (root / d).mkdir(parents=True)
    (root / "var/link").symlink_to("/mnt/nfs/sub")
    (root / "var/up").symlink_to("../mnt")
    (root / "var/loop").symlink_to("loop")
    mounts = [Mount(1, "/", "/", "xfs", "/dev/vda1", "rw", "rw"),
              Mount(2, "/", "/mnt/nfs", "nfs4", "filer:/x", "rw", "rw,addr=10.0.0.1")]
    return Host.from_paths(root), mounts


@MANY
@given(st.lists(st.sampled_from(["var", "crash", "link", "up", "loop", "mnt", "nfs", "sub",
                                 "local", "..", ".", "x", ""]), max_size=8))
def test_safepath_never_touches_what_is_under_a_network_mount(host_with_nfs, parts):
    host, mounts = host_with_nfs
    nfs = str(host.root("/mnt/nfs"))
    touched: list[str] = []
    real_lstat = os.lstat

    def recording_lstat(path, *args, **kwargs):
        touched.append(os.fspath(path))
        return real_lstat(path, *args, **kwargs)

    path = "/" + "/".join(parts)
    os.lstat = recording_lstat  # a recorder: every lstat still reaches the real filesystem
    try:
        try:
            resolved = resolve_safely(host, path, mounts)
        except UnsafePath as e:
            assert e.mount.mountpoint == "/mnt/nfs"
            resolved = None
    finally:
        os.lstat = real_lstat
    assert not [t for t in touched if t == nfs or t.startswith(nfs + "/")], (path, touched)
    if resolved is not None:
        m = mount_of(resolved, mounts)
        assert m is not None and not m.may_block


# --- procfs --------------------------------------------------------------------------------------


def parses_or_parse_error(parse, text):
    try:
        return parse(text)
    except ParseError:
        return None


@MANY
@given(ANY)
def test_procfs_parsers_take_any_text(text):
    value = parses_or_parse_error(procfs.parse_int, text)
    assert value is None or isinstance(value, int)
    meminfo = parses_or_parse_error(procfs.parse_meminfo, text)
    assert meminfo is None or all(isinstance(v, int) and v >= 0 for v in meminfo.values())
    ranges, skipped = procfs.parse_iomem(text)
    assert len(ranges) + skipped <= text.count("\n") + 1
    pressure = parses_or_parse_error(procfs.parse_pressure, text)
    assert pressure is None or pressure.some_total_us >= 0


@MANY
@given(st.integers(-(2**63), 2**64))
def test_single_values(value):
    assert procfs.parse_int(f"{value}\n") == value


iomem_range = st.builds(IomemRange, start=st.integers(0, 2**48), end=st.integers(0, 2**48),
                        name=st.text(min_size=1, max_size=20).filter(
                            lambda t: "\n" not in t and t.strip() == t),
                        depth=st.integers(0, 3))


@MANY
@given(st.lists(iomem_range, max_size=10), st.lists(garbage_line, max_size=3))
def test_iomem_ranges_come_back_exactly_between_garbage(ranges, garbage):
    lines = [f"{'  ' * r.depth}{r.start:08x}-{r.end:08x} : {r.name}" for r in ranges]
    assume(all(not procfs._IOMEM_LINE.match(g) for g in garbage))
    text = "\n".join([*garbage, *lines]) + "\n"
    assert procfs.parse_iomem(text) == (ranges, len(garbage))


@MANY
@given(st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9_()]{0,15}", fullmatch=True),
                       st.integers(0, 2**50), max_size=10), st.integers(0, 2**40))
def test_meminfo_comes_back_exactly(entries, total):
    entries = {**entries, "MemTotal": total}
    text = "".join(f"{k}:{v:>15} kB\n" for k, v in entries.items())
    assert procfs.parse_meminfo(text) == {k: v * 1024 for k, v in entries.items()}


@MANY
@given(st.integers(0, 2**63), st.one_of(st.none(), st.integers(0, 2**63)))
def test_pressure_comes_back_exactly(some, full):
    text = f"some avg10=0.00 avg60=1.50 avg300=0.20 total={some}\n"
    if full is not None:
        text += f"full avg10=0.00 avg60=0.75 avg300=0.10 total={full}\n"
    assert procfs.parse_pressure(text) == procfs.Pressure(some, full)


# --- kdump configuration -------------------------------------------------------------------------


@MANY
@given(ANY)
def test_kdump_config_parsers_take_any_text(text):
    kdump_config.parse_shell_vars(text)
    for parse in (kdump_config.parse_kdump_conf, kdump_config.parse_sysconfig_kdump,
                  kdump_config.parse_test_status):
        result = parses_or_parse_error(parse, text)
        assert result is None or isinstance(result, DumpTarget | kdump_config.KdumpTestStatus)
    target, use_kdump = kdump_config.parse_kdump_tools_defaults(text)
    assert isinstance(use_kdump, bool) and target.type in ("local", "ssh", "nfs")


word = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc")), min_size=1,
               max_size=20).filter(lambda t: "#" not in t and not any(c.isspace() for c in t))


@MANY
@given(word.map(lambda w: "/" + w), st.lists(garbage_line.map(lambda g: "#" + g), max_size=3))
def test_kdump_conf_path_comes_back_exactly(path, comments):
    text = "\n".join([*comments, f"path {path}", "core_collector makedumpfile -l -d 31"]) + "\n"
    assert kdump_config.parse_kdump_conf(text) == DumpTarget("local", path, config="kdump.conf")


shell_key = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
shell_value = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)


@MANY
@given(st.dictionaries(shell_key, shell_value, max_size=8))
def test_shell_variables_come_back_exactly_when_quoted(variables):
    """What a distribution tool writes with proper quoting, whatever the value holds. Runs of
    whitespace inside a value are one space after parsing, as the shell's word splitting."""
    text = "".join(f"{k}={shlex.quote(v)}\n" for k, v in variables.items())
    assert kdump_config.parse_shell_vars(text) == {k: " ".join(shlex.split(shlex.quote(v)))
                                                   for k, v in variables.items()}


@pytest.mark.parametrize("switch", ["1", "0", "true", "", "²", "٣", " 1 ", "01", "-1"])
def test_use_kdump_is_a_number_as_kdump_config_tests_it(switch):
    _, on = kdump_config.parse_kdump_tools_defaults(f"USE_KDUMP={switch}\n")
    assert on == (switch.strip() in ("1", "01"))


def test_sysconfig_url_that_does_not_parse_is_a_parse_error():
    with pytest.raises(ParseError):
        kdump_config.parse_sysconfig_kdump('KDUMP_SAVEDIR="ftp://[not-an-address/dumps"\n')


def test_reader_parsed_turns_every_bad_file_into_a_problem(tmp_path: Path):
    """The integration the fuzzing above protects: a garbled file fails its read, not the scrape."""
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/meminfo").write_text("MemTotal: ²² kB\n")
    reader = HostReader(Host.from_paths(tmp_path))
    assert reader.parsed(tmp_path / "proc/meminfo", procfs.parse_meminfo) is None
    assert reader.problems == [f"{tmp_path}/proc/meminfo: no MemTotal line"]


@pytest.mark.parametrize(("options", "server"), [
    ("rw,vers=4.2,addr=192.168.122.1", ("192.168.122.1", 2049)),
    ("rw,port=20490,addr=::ffff:10.0.0.1", ("10.0.0.1", 20490)),
    ("rw,port=0,addr=fd00::0001", ("fd00::1", 2049)),
    ("rw,addr=filer.example", None),  # a name: never resolved on the scrape path
    ("rw,port=70000,addr=10.0.0.1", None),
    ("rw,port=²,addr=10.0.0.1", ("10.0.0.1", 2049)),
    ("rw", None),
])
def test_nfs_server_from_mount_options(options, server):
    assert mountinfo_parser.nfs_server(options) == server


@MANY
@given(ANY)
def test_nfs_server_takes_any_options(options):
    server = mountinfo_parser.nfs_server(options)
    assert server is None or 0 < server[1] < 65536
