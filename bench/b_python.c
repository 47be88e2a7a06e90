/* Python's multiprocessing as a peer: every workload, run by bench/peers.py (which
   says in its note when it scales a count down). Three runs each: they are slow. */
#define _GNU_SOURCE
#include "bench.h"

enum { PY_RUNS = 3 };

BENCH_N(py_q1p1c_queue, "queue_1p1c_64B", "Python Queue", "msg/s", +1, PY_RUNS) {
    return b_python("queue_1p1c_64B", "queue");
}
BENCH_N(py_q1p1c_pipe, "queue_1p1c_64B", "Python Pipe", "msg/s", +1, PY_RUNS) {
    return b_python("queue_1p1c_64B", "pipe");
}
BENCH_N(py_q2p2c, "queue_2p2c_64B", "Python Queue", "msg/s", +1, PY_RUNS) {
    return b_python("queue_2p2c_64B", "queue");
}
BENCH_N(py_pingpong_queue, "pingpong_64B", "Python Queue", "us", -1, PY_RUNS) {
    return b_python("pingpong_64B", "queue");
}
BENCH_N(py_pingpong_pipe, "pingpong_64B", "Python Pipe", "us", -1, PY_RUNS) {
    return b_python("pingpong_64B", "pipe");
}
BENCH_N(py_q1mib, "queue_1MiB", "Python Queue", "GB/s", +1, PY_RUNS) {
    return b_python("queue_1MiB", "queue");
}
BENCH_N(py_pool_map, "pool_map_1M", "Python Pool", "items/s", +1, PY_RUNS) {
    return b_python("pool_map_1M", "");
}
BENCH_N(py_pool_apply, "pool_apply_async", "Python Pool", "tasks/s", +1, PY_RUNS) {
    return b_python("pool_apply_async", "");
}
BENCH_N(py_pool_imap, "pool_imap_chunk1", "Python Pool", "items/s", +1, PY_RUNS) {
    return b_python("pool_imap_chunk1", "");
}
BENCH_N(py_lock_unc, "lock_uncontended", "Python Lock", "ns", -1, PY_RUNS) {
    return b_python("lock_uncontended", "");
}
BENCH_N(py_lock_2p, "lock_contended_2p", "Python Lock", "ns", -1, PY_RUNS) {
    return b_python("lock_contended_2p", "");
}
BENCH_N(py_process, "process_start_join", "Python Process", "us", -1, PY_RUNS) {
    return b_python("process_start_join", "");
}
BENCH_N(py_process_fs, "process_start_join", "Python forkserver Process", "us", -1, PY_RUNS) {
    return b_python("process_start_join", "forkserver");
}
BENCH_N(py_tcp_pingpong, "tcp_pingpong_64B", "Python Listener/Client", "us", -1, PY_RUNS) {
    return b_python("tcp_pingpong_64B", "");
}
BENCH_N(py_connect_auth, "connect_auth", "Python Listener/Client", "us", -1, PY_RUNS) {
    return b_python("connect_auth", "");
}
