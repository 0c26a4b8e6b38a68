"""Prometheus TSDB blocks written straight from Python: XOR chunks, index v2, meta.json.

The on-disk format of Prometheus 2.x (tsdb/docs/format: chunks.md, index.md), for backfilling
more samples than `promtool tsdb create-blocks-from openmetrics` can parse in reasonable time
(it reads about 0.7 million samples a second on one core; a day of 1,000 panicwatch hosts is
3.6 billion). The writer is checked against promtool in fleet_1000_hosts.py --check: both
ways of loading the same samples must answer every dashboard and rule query identically.

What is written is what Prometheus' own BlockWriter writes: one block per call, series sorted
by label set and aligned to 16 bytes (a series' ID is its offset / 16), a symbol table,
postings per label pair (the all-postings list first), the label indices and offset tables,
the TOC, every section with its CRC32 (Castagnoli; batched with numpy, since the index of a
block of a million series is tens of megabytes), chunk segment files of at most 512 MiB.
"""

from __future__ import annotations

import json
import os
import secrets
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------------------------------------
# CRC32 Castagnoli
# ---------------------------------------------------------------------------------------------

_POLY = 0x82F63B78


def _byte_table() -> list[int]:
    table = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return table


TABLE = _byte_table()
_TABLE_NP = np.array(TABLE, dtype=np.uint32)
_PIECE = 1024  # messages up to this length go through one table lookup per byte
# _DIST[d, b]: the register (from 0) after byte b followed by d zero bytes.
_DIST = np.empty((_PIECE, 256), dtype=np.uint32)
_DIST[0] = _TABLE_NP
for _d in range(1, _PIECE):
    _prev = _DIST[_d - 1]
    _DIST[_d] = (_prev >> np.uint32(8)) ^ _TABLE_NP[_prev & np.uint32(0xFF)]
_DIST_FLAT = _DIST.reshape(-1)


def _shift_tables(n: int) -> list[list[int]]:
    """[k][b]: the register b << 8k after n zero bytes (the register is linear in its bytes)."""
    reg = np.array([[b << (8 * k) for b in range(256)] for k in range(4)], dtype=np.uint32)
    for _ in range(n):
        reg = (reg >> np.uint32(8)) ^ _TABLE_NP[reg & np.uint32(0xFF)]
    return [list(map(int, row)) for row in reg]


_SHIFT = _shift_tables(_PIECE)


def crc32c(data: bytes) -> int:
    """CRC32C of one short message, byte by byte (Go's crc32.Checksum with castagnoliTable)."""
    crc = 0xFFFFFFFF
    table = TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _raw_many(msgs: Sequence[bytes]) -> np.ndarray:
    """The CRC register from 0, no final xor, of each message of 1.._PIECE bytes."""
    out = np.empty(len(msgs), dtype=np.uint32)
    batch: list[bytes] = []
    size = 0
    done = 0

    def flush() -> None:
        nonlocal batch, size, done
        if not batch:
            return
        lengths = np.fromiter((len(m) for m in batch), dtype=np.int64, count=len(batch))
        buf = np.frombuffer(b"".join(batch), dtype=np.uint8)
        ends = np.cumsum(lengths)
        starts = ends - lengths
        # distance of each byte to the end of its message
        dist = np.repeat(ends - 1, lengths) - np.arange(len(buf), dtype=np.int64)
        vals = _DIST_FLAT[dist * 256 + buf]
        out[done:done + len(batch)] = np.bitwise_xor.reduceat(vals, starts)
        done += len(batch)
        batch, size = [], 0

    for m in msgs:
        batch.append(m)
        size += len(m)
        if size >= 1 << 23:
            flush()
    flush()
    return out


def crc32c_many(msgs: Sequence[bytes]) -> list[int]:
    """CRC32C of every message, batched: a table lookup per byte in numpy. The initial
    0xFFFFFFFF register is the same as flipping a message's first 4 bytes; a long message is
    cut into pieces whose registers are chained with a shift table."""
    result = [0] * len(msgs)
    short: list[bytes] = []
    short_at: list[int] = []
    long_at: list[int] = []
    pieces: list[bytes] = []
    for i, m in enumerate(msgs):
        if len(m) < 4:
            result[i] = crc32c(m)
            continue
        flipped = bytes(b ^ 0xFF for b in m[:4]) + m[4:]
        if len(flipped) <= _PIECE:
            short.append(flipped)
            short_at.append(i)
        else:
            pad = -len(flipped) % _PIECE  # leading zeros leave a register of 0 unchanged
            padded = bytes(pad) + flipped
            long_at.append(len(pieces))
            pieces.extend(padded[j:j + _PIECE] for j in range(0, len(padded), _PIECE))
            long_at.append(len(pieces))
            long_at.append(i)
    for i, raw in zip(short_at, _raw_many(short).tolist(), strict=True):
        result[i] = raw ^ 0xFFFFFFFF
    if pieces:
        raws = _raw_many(pieces).tolist()
        s0, s1, s2, s3 = _SHIFT
        for k in range(0, len(long_at), 3):
            first, end, i = long_at[k:k + 3]
            reg = 0
            for raw in raws[first:end]:
                reg = (s0[reg & 0xFF] ^ s1[(reg >> 8) & 0xFF] ^ s2[(reg >> 16) & 0xFF]
                       ^ s3[reg >> 24] ^ raw)
            result[i] = reg ^ 0xFFFFFFFF
    return result


# ---------------------------------------------------------------------------------------------
# Varints and XOR chunks
# ---------------------------------------------------------------------------------------------


def uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def varint(n: int) -> bytes:
    return uvarint((n << 1) ^ (n >> 63) if n < 0 else n << 1)


STALE_NAN = struct.unpack(">d", struct.pack(">Q", 0x7FF0000000000002))[0]
_BITS = struct.Struct(">Q")
_DOUBLE = struct.Struct(">d")


def float_bits(v: float) -> int:
    return _BITS.unpack(_DOUBLE.pack(v))[0]


def xor_chunk(ts: Sequence[int], vs: Sequence[float]) -> bytes:
    """A Gorilla/XOR chunk as Prometheus' xorAppender writes it: sample count, first
    timestamp (varint) and value (64 bits), the second timestamp's delta (uvarint), then
    delta-of-delta timestamps and XOR-ed values in a bit stream."""
    n = len(ts)
    head = bytearray(n.to_bytes(2, "big"))
    head += varint(ts[0])
    prev = float_bits(vs[0])
    head += prev.to_bytes(8, "big")
    if n == 1:
        return bytes(head)
    delta = ts[1] - ts[0]
    head += uvarint(delta)
    acc = 0
    nbits = 0
    leading = 0xFF
    trailing = 0
    for i in range(1, n):
        if i >= 2:
            new_delta = ts[i] - ts[i - 1]
            dod = new_delta - delta
            delta = new_delta
            if dod == 0:
                acc <<= 1
                nbits += 1
            else:
                for prefix, plen, width in ((0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20),
                                            (0b1111, 4, 64)):
                    if width == 64 or -((1 << (width - 1)) - 1) <= dod <= 1 << (width - 1):
                        acc = (((acc << plen) | prefix) << width) | (dod & ((1 << width) - 1))
                        nbits += plen + width
                        break
        cur = float_bits(vs[i])
        x = cur ^ prev
        prev = cur
        if x == 0:
            acc <<= 1
            nbits += 1
            continue
        new_leading = 64 - x.bit_length()
        new_trailing = (x & -x).bit_length() - 1
        if new_leading >= 32:
            new_leading = 31
        if leading != 0xFF and new_leading >= leading and new_trailing >= trailing:
            width = 64 - leading - trailing
            acc = (((acc << 2) | 0b10) << width) | (x >> trailing)
            nbits += 2 + width
            continue
        leading, trailing = new_leading, new_trailing
        sig = 64 - leading - trailing
        acc = (((((acc << 2) | 0b11) << 5 | leading) << 6 | (sig & 0x3F)) << sig) | (x >> trailing)
        nbits += 2 + 5 + 6 + sig
    pad = -nbits % 8
    return bytes(head) + (acc << pad).to_bytes((nbits + pad) // 8, "big")


def chunk_record(data: bytes) -> bytes:
    """A chunk as it sits in a segment file: length, encoding (1: XOR), data, CRC32C."""
    return uvarint(len(data)) + b"\x01" + data + crc32c(b"\x01" + data).to_bytes(4, "big")


# ---------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid(ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if ms is None else ms
    n = (ms << 80) | int.from_bytes(secrets.token_bytes(10), "big")
    return "".join(_CROCKFORD[(n >> (5 * (25 - i))) & 31] for i in range(26))


@dataclass
class Series:
    """One series of a block: its sorted label pairs and its chunks, each (mint, maxt,
    record) with record as chunk_record() made it (a record may be shared by many series:
    it is written once per series all the same)."""

    labels: tuple[tuple[str, str], ...]
    chunks: list[tuple[int, int, bytes]]


SEGMENT_SIZE = 512 * 1024 * 1024
_BE32 = struct.Struct(">I")


def _section(body: bytes, crc: int) -> bytes:
    return _BE32.pack(len(body)) + body + crc.to_bytes(4, "big")


class Symbols:
    """The symbol table of a set of label sets, with each label set's encoded labels."""

    def __init__(self, label_sets: Iterable[tuple[tuple[str, str], ...]]) -> None:
        strings: set[str] = set()
        for labels in label_sets:
            for name, value in labels:
                strings.add(name)
                strings.add(value)
        self.sorted = sorted(strings)
        self.ref = {s: i for i, s in enumerate(self.sorted)}
        self._encoded: dict[tuple[tuple[str, str], ...], bytes] = {}

    def encode(self, labels: tuple[tuple[str, str], ...]) -> bytes:
        enc = self._encoded.get(labels)
        if enc is None:
            ref = self.ref
            enc = uvarint(len(labels)) + b"".join(uvarint(ref[n]) + uvarint(ref[v])
                                                  for n, v in labels)
            self._encoded[labels] = enc
        return enc

    def section(self) -> bytes:
        body = _BE32.pack(len(self.sorted)) + b"".join(
            uvarint(len(b)) + b for b in (s.encode() for s in self.sorted))
        return _section(body, crc32c_many([body])[0])


def write_block(out_dir: Path, series: Sequence[Series], symbols: Symbols) -> dict[str, object]:
    """Write one block of these series (sorted by labels, every label in `symbols`) under
    out_dir; returns its meta.json."""
    mint = min(c[0] for s in series for c in s.chunks)
    maxt = max(c[1] for s in series for c in s.chunks)
    ulid = new_ulid()
    tmp = out_dir / (ulid + ".tmp")
    (tmp / "chunks").mkdir(parents=True)

    # Chunks: segment files, refs (segment index << 32 | offset).
    refs: list[list[int]] = []
    seg = 0
    out = open(tmp / "chunks" / f"{seg + 1:06d}", "wb")  # noqa: SIM115 (rotated below)
    header = _BE32.pack(0x85BD40DD) + b"\x01\x00\x00\x00"
    out.write(header)
    offset = len(header)
    pending: list[bytes] = []
    num_chunks = num_samples = 0
    counted: dict[int, int] = {}
    try:
        for s in series:
            r = []
            for _mint, _maxt, record in s.chunks:
                if offset + len(record) > SEGMENT_SIZE:
                    out.write(b"".join(pending))
                    pending = []
                    out.close()
                    seg += 1
                    out = open(tmp / "chunks" / f"{seg + 1:06d}", "wb")  # noqa: SIM115
                    out.write(header)
                    offset = len(header)
                r.append((seg << 32) | offset)
                pending.append(record)
                offset += len(record)
                if len(pending) >= 65536:
                    out.write(b"".join(pending))
                    pending = []
            refs.append(r)
            num_chunks += len(s.chunks)
            for _a, _b, rec in s.chunks:
                n = counted.get(id(rec))
                if n is None:
                    n = counted[id(rec)] = _samples(rec)
                num_samples += n
        out.write(b"".join(pending))
    finally:
        out.close()

    # Index.
    parts: list[bytes] = [_BE32.pack(0xBAAAD700) + b"\x02"]
    pos = len(parts[0])
    toc_symbols = pos
    sym = symbols.section()
    parts.append(sym)
    pos += len(sym)

    bodies = []
    for s, r in zip(series, refs, strict=True):
        b = bytearray(symbols.encode(s.labels))
        b += uvarint(len(s.chunks))
        prev_maxt = prev_ref = 0
        for k, ((c_mint, c_maxt, _rec), ref) in enumerate(zip(s.chunks, r, strict=True)):
            if k == 0:
                b += varint(c_mint) + uvarint(c_maxt - c_mint) + uvarint(ref)
            else:
                b += uvarint(c_mint - prev_maxt) + uvarint(c_maxt - c_mint) + varint(ref - prev_ref)
            prev_maxt, prev_ref = c_maxt, ref
        bodies.append(bytes(b))
    crcs = crc32c_many(bodies)
    pad = -pos % 16
    parts.append(bytes(pad))
    pos += pad
    toc_series = pos
    ids = np.empty(len(series), dtype=np.uint32)
    entries = []
    for i, (body, crc) in enumerate(zip(bodies, crcs, strict=True)):
        ids[i] = pos // 16
        entry = uvarint(len(body)) + body + crc.to_bytes(4, "big")
        pad = -len(entry) % 16
        entries.append(entry + bytes(pad))
        pos += len(entry) + pad
    del bodies
    parts.append(b"".join(entries))
    del entries

    # Postings per label pair: the positions (in sorted series order) of the series with it.
    postings: dict[tuple[str, str], list[int]] = {}
    for i, s in enumerate(series):
        for pair in s.labels:
            lst = postings.get(pair)
            if lst is None:
                postings[pair] = [i]
            else:
                lst.append(i)
    pairs = sorted(postings)

    # Label indices (unused by readers of v2, written as Prometheus writes them).
    names: dict[str, list[str]] = {}
    for name, value in pairs:
        names.setdefault(name, []).append(value)
    label_bodies = []
    for values in names.values():
        label_bodies.append(_BE32.pack(1) + _BE32.pack(len(values))
                            + b"".join(_BE32.pack(symbols.ref[v]) for v in values))
    toc_label_indices = 0
    label_offsets: list[tuple[str, int]] = []
    for (name, _values), body, crc in zip(names.items(), label_bodies,
                                          crc32c_many(label_bodies), strict=True):
        pad = -pos % 4
        parts.append(bytes(pad))
        pos += pad
        toc_label_indices = toc_label_indices or pos
        label_offsets.append((name, pos))
        sec = _section(body, crc)
        parts.append(sec)
        pos += len(sec)

    post_bodies = [_BE32.pack(len(ids)) + ids.astype(">u4").tobytes()]
    for pair in pairs:
        sel = ids[np.array(postings[pair], dtype=np.int64)]
        post_bodies.append(_BE32.pack(len(sel)) + sel.astype(">u4").tobytes())
    del postings
    toc_postings = 0
    post_offsets: list[int] = []
    for body, crc in zip(post_bodies, crc32c_many(post_bodies), strict=True):
        pad = -pos % 4
        parts.append(bytes(pad))
        pos += pad
        toc_postings = toc_postings or pos
        post_offsets.append(pos)
        sec = _section(body, crc)
        parts.append(sec)
        pos += len(sec)
    del post_bodies

    body = _BE32.pack(len(label_offsets)) + b"".join(
        b"\x01" + uvarint(len(n.encode())) + n.encode() + uvarint(off) for n, off in label_offsets)
    toc_label_table = pos
    sec = _section(body, crc32c_many([body])[0])
    parts.append(sec)
    pos += len(sec)

    entries_pot = [b"\x02" + uvarint(0) + uvarint(0) + uvarint(post_offsets[0])]
    for (name, value), off in zip(pairs, post_offsets[1:], strict=True):
        n, v = name.encode(), value.encode()
        entries_pot.append(b"\x02" + uvarint(len(n)) + n + uvarint(len(v)) + v + uvarint(off))
    body = _BE32.pack(len(entries_pot)) + b"".join(entries_pot)
    toc_postings_table = pos
    sec = _section(body, crc32c_many([body])[0])
    parts.append(sec)
    pos += len(sec)

    toc = struct.pack(">6Q", toc_symbols, toc_series, toc_label_indices, toc_label_table,
                      toc_postings, toc_postings_table)
    parts.append(toc + crc32c(toc).to_bytes(4, "big"))
    with open(tmp / "index", "wb") as f:
        for p in parts:
            f.write(p)

    meta: dict[str, object] = {
        "ulid": ulid, "minTime": mint, "maxTime": maxt + 1,
        "stats": {"numSamples": num_samples, "numSeries": len(series), "numChunks": num_chunks},
        "compaction": {"level": 1, "sources": [ulid]}, "version": 1,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent="\t"))
    os.rename(tmp, out_dir / ulid)
    return meta


def _samples(record: bytes) -> int:
    """The sample count of a chunk record (after its uvarint length and encoding byte)."""
    i = 0
    while record[i] & 0x80:
        i += 1
    return int.from_bytes(record[i + 2:i + 4], "big")
