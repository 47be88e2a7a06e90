#!/usr/bin/env python3
"""Python's multiprocessing doing the workloads of BENCHMARKS.md, for bench/mpbench.

    python3 bench/peers.py WORKLOAD VARIANT [COUNT]

prints `result N` in the workload's unit (msg/s, us, GB/s, items/s, tasks/s, ns) and
`note ...`. Python is about a hundred times slower than the C systems, so some counts
are scaled down to fit `make bench` into its time budget: only the count changes, the
figure is the same per-message (per-item, per-task) rate, and the note says so.
COUNT overrides the count (to check that scaling does not change the rate).

The fork start method is used, as mp.h forks (it is Linux's default before 3.14).

Placement: when $MPBENCH_PARTY_CPUS is set ("0,1"; mpbench sets it for a two-party
workload), each party pins itself first thing, party i to the (i mod n)th CPU listed,
and prints `pinned PARTY CPU` (mpbench counts them). The parties are numbered as in
the C benches: producers then consumers, or the ping-pong's parent 0 and echo 1."""
import multiprocessing as mp
from multiprocessing.connection import Client, Listener
from multiprocessing.managers import SyncManager
import os
import sys
import time

ctx = mp.get_context("fork")
MSG = b"x" * 64
MIB = bytes(1 << 20)

# workload: (count used here, count of BENCHMARKS.md, what is counted)
COUNTS = {
    "queue_1p1c_64B": (200_000, 1_000_000, "messages"),
    "queue_2p2c_64B": (200_000, 1_000_000, "messages"),
    "pingpong_64B": (20_000, 100_000, "round trips"),
    "queue_1MiB": (500, 2_000, "messages"),
    "pool_map_1M": (1_000_000, 1_000_000, "items"),
    "pool_apply_async": (20_000, 20_000, "tasks"),
    "pool_imap_chunk1": (20_000, 50_000, "items"),
    "lock_uncontended": (1_000_000, 1_000_000, "pairs"),
    "lock_contended_2p": (200_000, 1_000_000, "increments per process"),
    "process_start_join": (300, 2_000, "processes"),
    "tcp_pingpong_64B": (20_000, 100_000, "round trips"),
    "connect_auth": (1_000, 1_000, "connections"),
    "dict_set_get": (20_000, 200_000, "calls"),
}
KEY = b"bench key"


def pin(party):
    cpus = os.environ.get("MPBENCH_PARTY_CPUS")
    if not cpus:
        return
    cpus = [int(c) for c in cpus.split(",")]
    cpu = cpus[party % len(cpus)]
    os.sched_setaffinity(0, {cpu})
    sys.stdout.flush()
    # one write(2): parties print at once, and print() may write the text and its
    # newline apart ("pinned 0 0pinned 1 1" was seen), which hid a party from mpbench
    os.write(sys.stdout.fileno(), f"pinned {party} {cpu}\n".encode())


def as_party(party, fn, *args):
    """A Process target: pins this process as party, then runs fn(*args)."""
    pin(party)
    fn(*args)


def party(i, fn, args):
    return ctx.Process(target=as_party, args=(i, fn) + tuple(args))


def check(procs):
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"{p.name} exited with {p.exitcode}")


def run_all(procs):
    """Starts and joins procs; returns the seconds between the first start and the end."""
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    check(procs)
    return time.perf_counter() - t0


# ---- queues -----------------------------------------------------------------------------

def q_put(q, n, msg):
    put = q.put
    for _ in range(n):
        put(msg)


def q_get(q, n):
    get = q.get
    for _ in range(n):
        get()


def pipe_send(w, n, msg):
    send = w.send_bytes
    for _ in range(n):
        send(msg)


def pipe_recv(r, n):
    recv = r.recv_bytes
    for _ in range(n):
        recv()


def queue_1p1c_64B(variant, n):
    if variant == "pipe":
        r, w = ctx.Pipe(duplex=False)
        procs = [party(0, pipe_send, (w, n, MSG)), party(1, pipe_recv, (r, n))]
        note = "Pipe(duplex=False), send_bytes/recv_bytes; bounded by the pipe, not at 1024"
    else:
        q = ctx.Queue(1024)
        procs = [party(0, q_put, (q, n, MSG)), party(1, q_get, (q, n))]
        note = "Queue(1024), put/get of a 64-byte bytes"
    return n / run_all(procs), note


def q_get_counting(q, counts, i):
    get = q.get
    k = 0
    while get() is not None:
        k += 1
    counts[i] = k


def queue_2p2c_64B(variant, n):
    q = ctx.Queue(1024)
    counts = ctx.Array("q", 2, lock=False)
    prods = [party(i, q_put, (q, n // 2, MSG)) for i in range(2)]
    cons = [party(2 + i, q_get_counting, (q, counts, i)) for i in range(2)]
    t0 = time.perf_counter()
    for p in prods + cons:
        p.start()
    check(prods)
    for _ in cons:
        q.put(None)  # one end marker per consumer, after every message
    check(cons)
    dt = time.perf_counter() - t0
    if sum(counts) != n // 2 * 2:
        raise RuntimeError(f"received {sum(counts)} of {n // 2 * 2}")
    return n // 2 * 2 / dt, "Queue(1024), 2 producers, 2 consumers, count checked"


def echo_queue(a, b, n):
    get, put = a.get, b.put
    for _ in range(n):
        put(get())


def echo_pipe(c, n):
    recv, send = c.recv_bytes, c.send_bytes
    for _ in range(n):
        send(recv())


def pingpong_64B(variant, n):
    if variant == "pipe":
        here, there = ctx.Pipe()
        p = party(1, echo_pipe, (there, n + 1))
        put, get = here.send_bytes, here.recv_bytes
        note = "one duplex Pipe, send_bytes/recv_bytes"
    else:
        a, b = ctx.Queue(), ctx.Queue()
        p = party(1, echo_queue, (a, b, n + 1))
        put, get = a.put, b.get
        note = "two Queues"
    pin(0)
    p.start()
    put(MSG)  # the first round trip waits for the child to start
    get()
    t0 = time.perf_counter()
    for _ in range(n):
        put(MSG)
        get()
    dt = time.perf_counter() - t0
    check([p])
    return dt / n * 1e6, note


def queue_1MiB(variant, n):
    q = ctx.Queue(8)
    dt = run_all([party(0, q_put, (q, n, MIB)), party(1, q_get, (q, n))])
    return n * len(MIB) / dt / 1e9, "Queue(8) of 1 MiB bytes; GB = 1e9 bytes"


# ---- pool ---------------------------------------------------------------------------------

def square(x):
    return x * x


def with_pool(fn):
    with ctx.Pool(2) as pool:
        pool.map(square, range(64))  # the workers are up before the clock starts
        return fn(pool)


def pool_map_1M(variant, n):
    data = list(range(n))

    def run(pool):
        t0 = time.perf_counter()
        out = pool.map(square, data)
        dt = time.perf_counter() - t0
        if out[-1] != (n - 1) * (n - 1):
            raise RuntimeError("wrong result")
        return dt
    return n / with_pool(run), "Pool(2).map, default chunksize; pool started before the clock"


def pool_apply_async(variant, n):
    def run(pool):
        t0 = time.perf_counter()
        rs = [pool.apply_async(square, (i,)) for i in range(n)]
        total = sum(r.get() for r in rs)
        dt = time.perf_counter() - t0
        if total != sum(i * i for i in range(n)):
            raise RuntimeError("wrong result")
        return dt
    return n / with_pool(run), "Pool(2).apply_async, then get() each"


def pool_imap_chunk1(variant, n):
    def run(pool):
        t0 = time.perf_counter()
        k = sum(1 for _ in pool.imap(square, range(n), chunksize=1))
        dt = time.perf_counter() - t0
        if k != n:
            raise RuntimeError("lost items")
        return dt
    return n / with_pool(run), "Pool(2).imap(chunksize=1)"


# ---- locks and processes --------------------------------------------------------------------

def lock_uncontended(variant, n):
    lock = ctx.Lock()
    acquire, release = lock.acquire, lock.release
    t0 = time.perf_counter()
    for _ in range(n):
        acquire()
        release()
    return (time.perf_counter() - t0) / n * 1e9, "Lock().acquire(); release() (not robust)"


def increment(lock, counter, gate, n):
    acquire, release = lock.acquire, lock.release
    gate.wait()
    for _ in range(n):
        acquire()
        counter.value += 1
        release()


def lock_contended_2p(variant, n):
    lock, counter, gate = ctx.Lock(), ctx.RawValue("q", 0), ctx.Barrier(3)
    procs = [party(i, increment, (lock, counter, gate, n)) for i in range(2)]
    for p in procs:
        p.start()
    gate.wait()
    t0 = time.perf_counter()
    check(procs)
    dt = time.perf_counter() - t0
    if counter.value != 2 * n:
        raise RuntimeError(f"counter {counter.value}, expected {2 * n}")
    return dt / (2 * n) * 1e9, "Lock() around RawValue('q') += 1, 2 processes"


def noop():
    pass


def process_start_join(variant, n):
    c = mp.get_context("forkserver") if variant == "forkserver" else ctx
    if variant == "forkserver":  # the server's own start is not part of the figure
        p = c.Process(target=noop)
        p.start()
        p.join()
    t0 = time.perf_counter()
    for _ in range(n):
        p = c.Process(target=noop)
        p.start()
        p.join()
    how = 'get_context("forkserver").' if variant == "forkserver" else ""
    return (time.perf_counter() - t0) / n * 1e6, how + "Process(target=noop).start(); join()"


# ---- Listener and Client --------------------------------------------------------------

def tcp_echo(address, n):
    c = Client(address, authkey=KEY)
    recv, send = c.recv_bytes, c.send_bytes
    for _ in range(n):
        send(recv())
    c.close()


def tcp_pingpong_64B(variant, n):
    with Listener(("127.0.0.1", 0), authkey=KEY) as l:
        pin(0)
        p = party(1, tcp_echo, (l.address, n + 1))
        p.start()
        c = l.accept()
    put, get = c.send_bytes, c.recv_bytes
    put(MSG)  # the first round trip waits for the child to start
    get()
    t0 = time.perf_counter()
    for _ in range(n):
        put(MSG)
        get()
    dt = time.perf_counter() - t0
    c.close()
    check([p])
    return dt / n * 1e6, "Listener/Client on 127.0.0.1, send_bytes/recv_bytes"


def connect_many(address, n):
    for _ in range(n):
        Client(address, authkey=KEY).close()


def connect_auth(variant, n):
    with Listener(("127.0.0.1", 0), authkey=KEY) as l:
        pin(0)
        t0 = time.perf_counter()
        p = party(1, connect_many, (l.address, n))
        p.start()
        for _ in range(n):
            l.accept().close()
        dt = time.perf_counter() - t0
    check([p])
    digest = "HMAC-SHA256" if sys.version_info >= (3, 12) else "HMAC-MD5"
    return dt / n * 1e6, f"Client -> Listener on 127.0.0.1, {digest} both ways"


# ---- the Manager --------------------------------------------------------------------

def dict_set_get(variant, n):
    """The server is party 0 (pinned by its initializer), this client party 1."""
    m = SyncManager(ctx=ctx)
    m.start(pin, (0,))
    pin(1)
    with m:
        d = m.dict()
        keys = [f"0-{i}".encode().ljust(16, b"k") for i in range(1000)]
        t0 = time.perf_counter()
        for i in range(n // 2):
            k = keys[i % 1000]
            d[k] = i
            if d[k] != i:
                raise RuntimeError("lost a set")
        dt = time.perf_counter() - t0
    return n / dt, "Manager().dict(), d[k] = i then d[k], one process"


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in COUNTS:
        print("usage: peers.py WORKLOAD [VARIANT] [COUNT]; workloads:", *COUNTS, file=sys.stderr)
        return 2
    workload = sys.argv[1]
    variant = sys.argv[2] if len(sys.argv) > 2 else ""
    n, full, what = COUNTS[workload]
    if len(sys.argv) > 3:
        n = int(sys.argv[3])
    value, note = globals()[workload](variant, n)
    scaled = f"; {n:,} of {full:,} {what} (scaled down, same rate)" if n != full else ""
    print(f"note Python {sys.version.split()[0]}, {note}{scaled}")
    print(f"result {value:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
