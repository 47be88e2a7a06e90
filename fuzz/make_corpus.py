#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_conn into fuzz/corpus: byte 0 = mode, byte 1 = limit
choice (see fuzz_conn.c), then a stream. Valid frames come from Python's own
multiprocessing.connection (send_bytes over a pipe), so the seeds are the real wire
format; the rest are hand-made: -1 + 8-byte lengths, truncated frames, absurd and
negative lengths."""
import os, struct
from multiprocessing.connection import Pipe

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(here, exist_ok=True)


def python_frames(payloads):
    r, w = Pipe(duplex=False)
    out = b""
    for p in payloads:
        w.send_bytes(p)
        want = len(p) + 4
        while want:
            chunk = os.read(r.fileno(), want)
            out += chunk
            want -= len(chunk)
    r.close()
    w.close()
    return out


def save(name, mode, limit, stream):
    with open(os.path.join(here, name), "wb") as f:
        f.write(bytes([mode, limit]) + stream)


frames = {
    "empty": python_frames([b""]),
    "small": python_frames([b"hello", b"", b"x" * 100]),
    "sizes": python_frames([bytes([i % 256]) * n for i, n in enumerate([1, 3, 255, 256, 4095, 4096, 4097])]),
    "big": python_frames([os.urandom(20000), b"tail"]),
    "many": python_frames([struct.pack("!I", i) for i in range(200)]),
}
for i, (name, s) in enumerate(sorted(frames.items())):
    for style in range(4):
        save(f"py-{name}-s{style}", style << 2 | (i % 2), 5 if name == "big" else 4, s)
        save(f"py-{name}-s{style}-open", style << 2 | 2 | (i << 4 & 0x70), 7, s)

long8 = b"\xff\xff\xff\xff" + struct.pack("!Q", 5) + b"12345"
save("long8-small", 0x00, 4, long8)
save("long8-then-short", 0x04, 4, long8 + struct.pack("!i", 2) + b"ok")
save("long8-absurd", 0x08, 5, b"\xff\xff\xff\xff" + struct.pack("!Q", 1 << 62) + b"x")
save("long8-max", 0x0c, 5, b"\xff\xff\xff\xff" + b"\xff" * 8)
save("long8-truncated-header", 0x00, 4, b"\xff\xff\xff\xff\x00\x00")
save("long8-truncated-header-open", 0x02, 4, b"\xff\xff\xff\xff\x00\x00")
save("negative", 0x00, 4, struct.pack("!i", -2) + b"abc")
save("int-min", 0x04, 4, struct.pack("!i", -(2 ** 31)))
save("absurd-2g", 0x08, 5, struct.pack("!i", 2 ** 31 - 1) + b"abc")
save("over-limit", 0x00, 1, struct.pack("!i", 13) + b"x" * 13)
save("at-limit", 0x00, 1, struct.pack("!i", 12) + b"x" * 12)
save("truncated-payload", 0x00, 4, struct.pack("!i", 100) + b"x" * 50)
save("truncated-payload-open", 0x0a, 4, struct.pack("!i", 100) + b"x" * 50)
save("truncated-big-direct", 0x30, 5, struct.pack("!i", 60000) + b"y" * 30000)
save("truncated-header", 0x00, 4, b"\x00\x00")
save("header-only", 0x04, 4, struct.pack("!i", 0))
save("zero-then-garbage", 0x0c, 4, struct.pack("!i", 0) + b"\x80\x00")
print(len(os.listdir(here)), "seeds in", here)
