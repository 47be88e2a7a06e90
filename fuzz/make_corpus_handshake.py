#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_handshake into fuzz/corpus-handshake: byte 0 = mode
(see fuzz_handshake.c), then the peer's stream. The challenges are the ones Python's
own deliver_challenge sends (3.11's 20 bytes, 3.12+'s "{sha256}" + 40), captured over
a Pipe; the rest are hand-made: other digests, wrong answers, oversized and 64-bit
headers, pipelined data."""
import os, struct, threading
from multiprocessing.connection import Pipe, deliver_challenge

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-handshake")
os.makedirs(here, exist_ok=True)


def frame(b):
    return struct.pack("!i", len(b)) + b


def frame64(b):
    return struct.pack("!iQ", -1, len(b)) + b


def python_challenge():
    """The first message this Python's deliver_challenge sends."""
    a, b = Pipe()
    t = threading.Thread(target=lambda: _swallow(deliver_challenge, a))
    t.start()
    msg = b.recv_bytes(256)
    b.send_bytes(b"x" * 16)  # a wrong answer: it sends #FAILURE# and gives up
    b.recv_bytes(256)
    t.join()
    a.close(), b.close()
    return msg


def _swallow(f, conn):
    try:
        f(conn, b"some key")
    except Exception:
        pass


def save(name, mode, stream):
    with open(os.path.join(here, name), "wb") as f:
        f.write(bytes([mode]) + stream)


modern = python_challenge()
legacy = b"#CHALLENGE#" + bytes(range(20))
W, F = frame(b"#WELCOME#"), frame(b"#FAILURE#")
if not modern.startswith(b"#CHALLENGE#{"):  # an old Python: make the modern one by hand
    modern = b"#CHALLENGE#{sha256}" + os.urandom(40)
save("ok-modern", 1, frame(modern) + W)
save("ok-legacy", 1, frame(legacy) + W + frame(b"data after the handshake"))
save("ok-md5-prefix", 1, frame(b"#CHALLENGE#{md5}" + bytes(40)) + W)
save("ok-64bit-header", 1, frame64(modern) + frame64(b"#WELCOME#"))
save("ok-keep-open", 3, frame(modern) + W)
save("peer-refuses", 1, frame(legacy) + F)
save("sha384", 1, frame(b"#CHALLENGE#{sha384}" + bytes(40)) + W)
save("short-challenge", 1, frame(b"#CHALLENGE#" + bytes(19)) + W)
save("not-a-challenge", 1, frame(b"#CHALLENGX#" + bytes(20)) + W)
save("big-challenge", 1, frame(b"#CHALLENGE#" + bytes(246)) + W)
save("huge-header", 1, struct.pack("!I", 0x7FFFFFFF) + bytes(64))
save("negative-header", 0, struct.pack("!i", -2) + bytes(8))
save("wrong-sha256", 0, frame(b"{sha256}" + bytes(32)) + frame(legacy) + W)
save("bare-md5", 0, frame(bytes(16)) + frame(legacy) + W)
save("bare-20", 0, frame(bytes(20)))
save("data-first", 0, frame(b"hello") + frame(b"world"))
save("truncated", 0, b"\0\0\0\x28{sha256}")
save("client-modern", 4, frame(modern) + W + frame(b"{sha256}" + bytes(32)))
save("client-legacy", 4, frame(legacy) + W + frame(bytes(16)))
save("client-refused", 4, frame(modern) + F)
print("wrote", len(os.listdir(here)), "seeds to", here)
