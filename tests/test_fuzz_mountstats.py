"""Fuzzing the mountstats parser: it never raises, and garbage costs only the block it lands in.

Mounts are generated as NfsMount values, rendered the way the kernel prints them (a renderer and
the transport layouts are written out here, independently of the parser), and parsed back.

Hypothesis draws the parts that are hardest to get right (mount points full of escapes and odd
whitespace, mutation lists, the text itself) and a seed; a ``random.Random`` from that seed fills
in the bulk (counters, op names, options, garbage). On this 2-core machine every hypothesis draw
costs about 0.1 ms, so drawing hundreds of integers per example through strategies (or through
``st.randoms()``) made 10,000 examples take many minutes; this way the module runs in under a
minute. A failure still reproduces: hypothesis reports the seed.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from panicwatch.parsers.mountstats import NfsMount, OpStats, Transport, parse_mountstats, parse_rpc_nfs
from panicwatch.parsers.procfs import ParseError

# The two main properties run 10,000 examples each; the slower mutation tests fewer, to keep the
# module near a minute on a small machine.
MANY = settings(max_examples=10_000, deadline=None)
SOME = settings(max_examples=1_000, deadline=None)
FEWER = settings(max_examples=500, deadline=None)

# Transport layouts, from net/sunrpc/xprtsock.c and net/sunrpc/xprtrdma/transport.c.
TCP = ["port", "bind_count", "connect_count", "connect_time", "idle_time", "sends", "recvs", "bad_xids",
       "req_u", "bklog_u"]
SLOTS = ["max_slots", "sending_u", "pending_u"]
UDP = ["port", "bind_count", "sends", "recvs", "bad_xids", "req_u", "bklog_u"]
LOCAL = TCP[1:]
RDMA = ["read_chunk_count", "write_chunk_count", "reply_chunk_count", "total_rdma_request",
        "total_rdma_reply", "pullup_copy_count", "fixup_copy_count", "hardway_register_count",
        "failed_marshal_count", "bad_reply_count", "nomsg_call_count", "mrs_recycled", "mrs_orphaned",
        "mrs_allocated", "local_inv_needed", "empty_sendctx_q", "reply_waits_for_send"]
LAYOUTS = {("tcp", 10): TCP, ("tcp", 13): TCP + SLOTS, ("udp", 7): UDP, ("udp", 10): UDP + SLOTS,
           ("local", 9): LOCAL, ("local", 12): LOCAL + SLOTS}

INTERESTING = [0, 1, 2, 255, 2**31 - 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1]


def counter(rnd: random.Random) -> int:
    return rnd.choice(INTERESTING) if rnd.random() < 0.3 else rnd.getrandbits(rnd.choice((10, 32, 64)))


def counters(rnd: random.Random, n: int) -> tuple[int, ...]:
    """n counters of one size class (small, 32-bit, 64-bit), sometimes with an edge value."""
    bits = rnd.choice((10, 32, 64))
    values = [rnd.getrandbits(bits) for _ in range(n)]
    if n and rnd.random() < 0.3:
        values[rnd.randrange(n)] = rnd.choice(INTERESTING)
    return tuple(values)


def expected_transport(proto: str, values: tuple[int, ...]) -> Transport:
    if proto == "rdma":
        named = dict(zip(TCP, values, strict=False))
        return Transport(proto, values, **named, rdma=dict(zip(RDMA, values[10:], strict=False)))
    names = LAYOUTS.get((proto, len(values)))
    if names is None:
        return Transport(proto, values)
    return Transport(proto, values, **dict(zip(names, values, strict=True)))


def escape(path: str) -> str:
    """The kernel's mangle()/seq_escape(): octal for space, tab, newline and backslash."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in path)


# Characters that make paths and server-chosen text hard: the four the kernel escapes, other
# whitespace it does not, separators, quotes, digits after a backslash, non-ASCII. (A plain
# string alphabet lets hypothesis draw the whole text at once: several times faster.)
PATH_CHARS = " \t\n\\\r\x0b\x0c\x1c\x85\xa0\u2028\u3000:[]'/.-_aZ0147é中\U0001f600"
path_text = st.text(alphabet=PATH_CHARS, max_size=10)
SERVERS = ["nfs1", "files.lab.example", "10.1.2.3", "[fd00::1]", "[fe80::1%eth0]", "srv-2.example.com"]
OP_NAMES = ["NULL", "READ", "WRITE", "GETATTR", "OPEN_DOWNGRADE", "BIND_CONN_TO_SESSION", "READ_PLUS", "51",
            "COPY_NOTIFY", "SEQUENCE", "READDIRPLUS", "X"]
OPT_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789._:/%-"
OP_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789"
UNKNOWN_KEYS = ["caps", "nfsv4", "sec", "fsc", "sunrpc-id", "spread reads", "mdconnect", "remoteports_offset"]
WEIRD = " \t\r\x0b\x85\u2028\u3000:,='\\x"
IMPL_CHARS = PATH_CHARS.replace("'", "")


def word(rnd: random.Random, alphabet: str, low: int, high: int) -> str:
    return "".join(rnd.choices(alphabet, k=rnd.randint(low, high)))


# Lines a server could smuggle into its impl_id name or domain: the parser must not read them.
IMPL_LINES = ["", "\n", "\n\n", "\n\tevents:\t1 2 3\n", "\n\tper-op statistics\n", "\n\tage:\tx",
              "\n\t        READ: 1\n", "\n   \n"]


def impl_text(rnd: random.Random) -> str:
    return word(rnd, IMPL_CHARS, 0, 6) + rnd.choice(IMPL_LINES) + word(rnd, IMPL_CHARS, 0, 6)


def op_names(rnd: random.Random) -> list[str]:
    names = {rnd.choice(OP_NAMES) if rnd.random() < 0.5 else word(rnd, OP_CHARS, 1, 20)
             for _ in range(rnd.choice([0, 1, 2, 3, 5, 8, 16]) if rnd.random() < 0.97 else 69)}
    return sorted(names, key=lambda _: rnd.random())


def transport_kind(rnd: random.Random) -> tuple[str, int]:
    roll = rnd.random()
    if roll < 0.7:
        return rnd.choice(sorted(LAYOUTS))
    if roll < 0.9:
        return "rdma", rnd.randint(20, 30)
    return rnd.choice(["vsock", "tcp-tls"]), rnd.randint(1, 5)


@st.composite
def mounts(draw: st.DrawFn) -> tuple[NfsMount, str]:
    """An NfsMount and its text as the kernel prints it, blank line included. Two draws: a seed
    and the mount point; every draw costs this machine about 0.1 ms."""
    return mount_from(random.Random(draw(st.integers(0, 2**32 - 1))), "/" + draw(path_text))


def mount_from(rnd: random.Random, mountpoint: str) -> tuple[NfsMount, str]:
    device = f"{rnd.choice(SERVERS)}:/{word(rnd, PATH_CHARS, 0, 10)}"
    # The impl_id name and domain come from the server: newlines included; quotes and device
    # lines are left out (documented limits of the parser).
    impl = None if rnd.random() < 0.5 else (impl_text(rnd), impl_text(rnd))
    fstype, statvers = rnd.choice(["nfs", "nfs4"]), rnd.choice(["1.0", "1.1"])
    opts = {word(rnd, "abcdefghijklmnopqrstuvwxyz_", 1, 10): rnd.choice(["", word(rnd, OPT_CHARS, 1, 16)])
            for _ in range(rnd.choice((0, 1, 3, 6)))}
    width = rnd.choice([8, 9, 0])  # 0: a mix
    padded = rnd.random() < 0.2  # trailing spaces on some op lines: the slow path
    age, events, byte_counts = counter(rnd), counters(rnd, rnd.choice([25, 27])), counters(rnd, 8)
    rpc = (rnd.choice(["1.0", "1.1"]), rnd.choice([100003, rnd.randrange(2**32)]), rnd.randrange(5))
    transports = tuple(expected_transport(proto, counters(rnd, n))
                       for proto, n in (transport_kind(rnd) for _ in range(rnd.choice([0, 1, 1, 2, 4]))))
    ops = {name: OpStats(*counters(rnd, width or rnd.choice([8, 9]))) for name in op_names(rnd)}
    extra = [f"\t{rnd.choice(UNKNOWN_KEYS)}:\t{word(rnd, WEIRD, 0, 12)}"
             for _ in range(rnd.choice([0, 0, 1, 3]))]

    header = f"device {escape(device)} mounted on {escape(mountpoint)} with fstype {fstype}"
    lines = [f"{header} statvers={statvers}",
             "\topts:\t" + ",".join(k if v == "" else f"{k}={v}" for k, v in opts.items()),
             f"\tage:\t{age}"]
    if impl is not None:
        lines.append(f"\timpl_id:\tname='{impl[0]}',domain='{impl[1]}',date='{rnd.randrange(2**40)},0'")
    lines += extra
    lines += ["\tevents:\t" + "".join(f"{v} " for v in events),
              "\tbytes:\t" + "".join(f"{v} " for v in byte_counts),
              f"\tRPC iostats version: {rpc[0]}  p/v: {rpc[1]}/{rpc[2]} (nfs)"]
    lines += [f"\txprt:\t{t.proto} " + " ".join(map(str, t.values)) for t in transports]
    lines.append("\tper-op statistics")
    for name, op in ops.items():
        pad = "  " if padded and rnd.random() < 0.5 else ""
        lines.append(f"\t{name:>12}: " + " ".join(str(v) for v in op if v is not None) + pad)
    text = "\n".join(lines) + "\n\n"
    mount = NfsMount(device=device, mountpoint=mountpoint, fstype=fstype, statvers=statvers, opts=opts,
                     age=age, events=events, bytes=byte_counts, rpc_iostats_version=rpc[0],
                     rpc_program=rpc[1], rpc_program_version=rpc[2], transports=transports, ops=ops)
    return mount, text


# Lines that can sit between mounts: anything without a newline, or pieces of mountstats syntax.
# None of them is a "per-op statistics" line, so no garbage device block can come out complete.
FRAGMENTS = [
    "", "   ", "\t", "device", "device tmpfs mounted on /tmp with fstype tmpfs",
    "no device mounted on /x with fstype y",
    "device a:/b mounted on /g with fstype nfs4 statvers=1.1", "device a:/b mounted on /g with fstype nfs",
    "device  mounted on  with fstype ", "\topts:\trw,vers=3", "\tage:\t12", "\tevents:\t1 2 3",
    "\tbytes:\t1 2 3 4 5 6 7 8 ", "\tRPC iostats version: 1.1  p/v: 100003/4 (nfs)", "\txprt:\ttcp 1 2",
    "\t        READ: 1 2 3 4 5 6 7 8 9", "\timpl_id:\tname='x", "',domain='',date='0,0'", "per-op", "\u2028",
]
junk_lines = st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet=st.characters(exclude_characters="\n"),
                                                           max_size=40)).filter(
    lambda line: line.strip() != "per-op statistics")
JUNK_CHARS = PATH_CHARS.replace("\n", "") + "device mounted on with fstype nfs4 statvers=1.1 \t:0123456789"
DEVICE_HEADERS = ["a:/b mounted on /g with fstype nfs4 statvers=1.1", "x mounted on /y with fstype nfs",
                  "tmpfs mounted on /t with fstype tmpfs", "junk", ""]


def garbage_text(seed: int) -> str:
    """What may sit between two mounts: junk lines, or a device line that starts a junk block."""
    rnd = random.Random(seed)
    lines = []
    for _ in range(rnd.choice([0, 1, 1, 2, 3])):
        line = rnd.choice(FRAGMENTS) if rnd.random() < 0.5 else word(rnd, JUNK_CHARS, 0, 30)
        if line.strip() != "per-op statistics":
            lines.append(line)
    if rnd.random() < 0.3:
        header = rnd.choice(DEVICE_HEADERS) if rnd.random() < 0.5 else word(rnd, JUNK_CHARS, 0, 30)
        lines.insert(0, "device " + header)
    return "".join(line + "\n" for line in lines)



# --- (a) arbitrary text ------------------------------------------------------------------------

# One complete block, pieces of which the soup below reuses.
TEMPLATE = (
    "device srv:/e mounted on /m with fstype nfs4 statvers=1.1\n\topts:\trw,vers=4.2,proto=tcp\n\tage:\t9\n"
    "\timpl_id:\tname='',domain='',date='0,0'\n\tevents:\t" + "1 " * 27 + "\n\tbytes:\t" + "2 " * 8 + "\n"
    "\tRPC iostats version: 1.1  p/v: 100003/4 (nfs)\n\txprt:\ttcp 1 0 1 0 0 5 5 0 5 0 2 0 1\n"
    "\tper-op statistics\n\t        NULL: 1 1 0 44 24 0 0 0 0\n\t        READ: 5 5 0 600 40960 0 7 8 0\n\n"
)
SOUP_PIECES = [*FRAGMENTS, "\tper-op statistics", "", " ", "0", "\\040", "\t  READ: 1 2 3 4 5 6 7 8",
               "\t  READ: 1 2 3 4 5 6 7 8 9 10", "\tevents:\t" + "3 " * 25, "\timpl_id:\tname='a"]


def soup_text(seed: int) -> str:
    """Mountstats-flavoured nonsense: known lines, random text, slices of a complete block."""
    rnd = random.Random(seed)
    parts = []
    for _ in range(rnd.randint(0, 12)):
        roll = rnd.random()
        if roll < 0.45:
            parts.append(rnd.choice(SOUP_PIECES) + "\n")
        elif roll < 0.7:
            parts.append(word(rnd, JUNK_CHARS + "\n", 0, 20))
        else:
            start = rnd.randrange(len(TEMPLATE))
            parts.append(TEMPLATE[start:rnd.randint(start, len(TEMPLATE))])
    return "".join(parts)


soup = st.integers(0, 2**32 - 1).map(soup_text)


@MANY
@given(st.one_of(st.text(), soup))
def test_arbitrary_text_never_raises(text: str) -> None:
    result = parse_mountstats(text)
    for mount in result.mounts:
        assert len(mount.events) in (25, 27)
        assert len(mount.bytes) == 8
        assert all(isinstance(v, int) and v >= 0 for v in mount.events + mount.bytes)
        assert all(isinstance(v, int) and v >= 0 for op in mount.ops.values() for v in op if v is not None)
    assert all(isinstance(reason, str) for reason in result.skipped)


@SOME
@given(st.one_of(st.text(), soup))
def test_rpc_nfs_raises_only_parse_error(text: str) -> None:
    try:
        stats = parse_rpc_nfs(text)
    except ParseError:
        return
    assert stats.calls >= 0


# --- (b) mutated valid input --------------------------------------------------------------------

mutations = st.lists(st.tuples(
    st.sampled_from(["insert_line", "delete_line", "replace_number", "insert_chars", "duplicate_line",
                     "swap_lines", "truncate"]),
    st.integers(0, 10**6),
    st.one_of(junk_lines, st.sampled_from(["-1", "x", "", "1.5", "99999999999999999999999", "٣", "0x10"])),
), min_size=1, max_size=5)


Edits = list[tuple[str, int, str]]


def mutate(text: str, edits: Edits, *, lines_from: int = 0, lines_to: int | None = None) -> str:
    """Apply edits to the lines in [lines_from, lines_to) (all lines by default)."""
    lines = text.split("\n")
    head, body, tail = lines[:lines_from], lines[lines_from:lines_to], lines[lines_to:] if lines_to else []
    for kind, where, payload in edits:
        if not body and kind != "insert_line":
            continue
        i = where % max(len(body), 1)
        if kind == "insert_line":
            body.insert(where % (len(body) + 1), payload)
        elif kind == "delete_line":
            del body[i]
        elif kind == "replace_number":
            words = body[i].split(" ")
            numeric = [k for k, w in enumerate(words) if w.isdigit()]
            if numeric:
                words[numeric[where % len(numeric)]] = payload
                body[i] = " ".join(words)
        elif kind == "insert_chars":
            at = where % (len(body[i]) + 1)
            body[i] = body[i][:at] + payload + body[i][at:]
        elif kind == "duplicate_line":
            body.insert(i, body[i])
        elif kind == "swap_lines":
            j = (where // 7) % len(body)
            body[i], body[j] = body[j], body[i]
        elif kind == "truncate" and lines_to is None:
            flat = "\n".join(body)
            body = flat[:where % (len(flat) + 1)].split("\n")
    return "\n".join(head + body + tail)


@SOME
@given(st.lists(mounts(), min_size=1, max_size=3), mutations)
def test_mutated_file_never_raises(generated: list[tuple[NfsMount, str]], edits: Edits) -> None:
    text = mutate("".join(block for _, block in generated), edits)
    result = parse_mountstats(text)
    for mount in result.mounts:
        assert len(mount.events) in (25, 27)
        assert len(mount.bytes) == 8


@SOME
@given(st.lists(mounts(), min_size=2, max_size=4), st.data(), mutations)
def test_mutations_inside_one_block_cost_only_that_block(
        generated: list[tuple[NfsMount, str]], data: st.DataObject, edits: Edits) -> None:
    """Edit the lines of one mount (not its device line, not its closing blank line): every other
    mount still comes out exactly, in order."""
    victim = data.draw(st.integers(0, len(generated) - 1))
    before = "".join(block for _, block in generated[:victim])
    block = generated[victim][1]
    after = "".join(block for _, block in generated[victim + 1:])
    # The block's lines: device line, body..., "" (the blank line), "" (after the last newline).
    mutated = mutate(block, edits, lines_from=1, lines_to=-2)
    result = parse_mountstats(before + mutated + after)
    others = [mount for k, (mount, _) in enumerate(generated) if k != victim]
    assert is_subsequence(others, result.mounts)


def is_subsequence(wanted: list[NfsMount], got: list[NfsMount]) -> bool:
    remaining = iter(got)
    return all(any(w == g for g in remaining) for w in wanted)


# --- (c) valid blocks with garbage between them -----------------------------------------------

@MANY
@given(st.integers(0, 2**64 - 1), st.lists(path_text, max_size=3))
def test_valid_mounts_survive_garbage_between_them(seed: int, paths: list[str]) -> None:
    """The main property. Hypothesis draws the mount points (the hardest part of a block to get
    right) and a seed for the rest: one mount per mount point, garbage before and after each."""
    rnd = random.Random(seed)
    generated = [mount_from(rnd, "/" + path) for path in paths]
    text = garbage_text(rnd.getrandbits(32)) + "".join(
        block + garbage_text(rnd.getrandbits(32)) for _, block in generated)
    result = parse_mountstats(text)
    assert result.mounts == [mount for mount, _ in generated]


@FEWER
@given(st.lists(mounts(), min_size=1, max_size=4))
def test_rendered_mounts_round_trip(generated: list[tuple[NfsMount, str]]) -> None:
    result = parse_mountstats("".join(block for _, block in generated))
    assert result.skipped == []
    assert result.mounts == [mount for mount, _ in generated]
