"""The compiled decision loop of :class:`~dlsched_gym.env.DLClusterEnv` (``backend="compiled"``).

Profiling the env showed every step spread over the engine's start and advance, the observation
and the mask, each a few dozen Python operations (about 100 microseconds a step on the reference
machine). This module does the same work in one numba-compiled call per step, for the env's
common configuration (:func:`unsupported` lists what it needs): it is a second implementation of
exactly the semantics of :class:`~dlsched_gym.engine.Engine` and
:class:`~dlsched_gym.env.ObservationBuilder` restricted to that configuration, floating-point
operation for floating-point operation, so observations, masks, rewards and results are
bit-identical to the Python backend (``tests/env/test_kernel.py`` checks this step by step on
random traces, clusters and actions, and compares the complete engine state).

State lives in numpy arrays (a few int64/float64 scalar registers and per-job, per-node and
per-GPU arrays). Queued jobs form a doubly linked list sorted by the window's order key (job
index for ``window_order="arrival"``; rank by predicted duration, then index, for
``"duration"``), running jobs a list in start order (the order the Python engine's ``alloc``
dict iterates, so sums are taken in the same order), and completions a binary heap ordered by
(time, start sequence), as the engine's event heap orders them.

:meth:`CompiledEpisode.write_back` copies the state into the Python engine and observation
builder (their complete state for this configuration), so code that reads ``env.engine``
mid-episode (e.g. :class:`agents.SchedulerPolicy`) sees exactly what the Python backend would
show.
"""

from __future__ import annotations

import heapq
import math
import sys
from typing import NamedTuple

import numpy as np
from numba import njit

from dlsched_gym.cluster import ClusterSpec

# Job states (the engine's codes) and the completion event kind.
_QUEUED, _RUNNING, _FINISHED = 1, 2, 3
_COMPLETION = 0

# int64 registers
(_NEXT, _N, _FREE, _QLEN, _QREQ, _NRUN, _DONE, _DECISIONS, _SEQ, _HEAPN, _STALLED, _ENG_STALLED,
 _FORCED, _HEAD, _TAIL, _NSLOTS, _FILLED, _LARGEST, _ACTED, _NEW_LO, _NEW_HI, _NFIN, _K,
 _NODE_RULE, _MAX_NODE, _GPUS, _NODES, _SMALL, _ALL_SMALL, _FIRST_FIT) = range(30)
_IREGS = 30
# rows of the per-job float array, the per-job int array and the position-indexed int lists
(_JF_SUBMIT, _JF_WORK, _JF_PRED, _JF_GPUS_FEAT, _JF_PRED_FEAT, _JF_WORK_FEAT, _JF_FIRST_START,
 _JF_END_TIME, _JF_PRED_END) = range(9)
_JI_REQ, _JI_KEY, _JI_STATE, _JI_QNEXT, _JI_QPREV, _JI_GPU_OFF = range(6)
_POS_RUNNING, _POS_HSEQ, _POS_HJOB, _POS_FIN = range(4)
# float64 registers
_NOW, _BUSY, _AVAIL, _JIS = range(4)
_FREGS = 4

_INF = math.inf
_TIME_CAP = 30 * 86400.0
_LOG_TIME_CAP = math.log1p(_TIME_CAP / 60.0)
_LOG_COUNT_CAP = math.log1p(1000.0)
_FREE_BUCKETS = 9
_FEATURES = 8


def unsupported(*, preemption: bool, perf, placement, predictor,
                spec: ClusterSpec, workload_table) -> list[str]:
    """Why the compiled backend cannot run this env configuration (empty: it can).

    It needs: no preemption, the ``duration`` perf model, ``consolidated``
    or ``first-fit`` placement, a fixed predictor (``oracle`` or ``noisy``), a cluster without GPU
    sharing, regions or an inference pool, and jobs without a requested GPU type.
    """
    why = []
    if preemption:
        why.append("preemption=True")
    if perf != "duration":
        why.append(f"perf={perf!r} (needs 'duration')")
    if placement not in ("consolidated", "first-fit"):
        why.append(f"placement={placement!r} (needs 'consolidated' or 'first-fit')")
    if predictor not in ("oracle", "noisy"):
        why.append(f"predictor={predictor!r} (needs 'oracle' or 'noisy')")
    if spec.gpu_share_limit != 1:
        why.append(f"cluster {spec.name!r} shares GPUs")
    if len(spec.regions) != 1:
        why.append(f"cluster {spec.name!r} has {len(spec.regions)} regions")
    if spec.node_pool_inference.any() or len(spec.inference_schedule):
        why.append(f"cluster {spec.name!r} has an inference pool")
    if (workload_table["gpu_type"].astype(str) != "").any():
        why.append("jobs request GPU types")
    return why


# ----------------------------------------------------------------------------- compiled parts
@njit(cache=True)
def _squash(t):
    if t > 0:
        v = math.log1p(t / 60.0) / _LOG_TIME_CAP
        return v if v < 1.0 else 1.0
    return 0.0


@njit(cache=True)
def _advance_clock(iv, fv, t):
    dt = t - fv[_NOW]
    if dt > 0:
        online = iv[_GPUS]
        fv[_BUSY] += (online - iv[_FREE]) * dt
        fv[_AVAIL] += online * dt
        fv[_JIS] += (iv[_QLEN] + iv[_NRUN]) * dt
        fv[_NOW] = t


@njit(cache=True)
def _heap_less(h_time, h_seq, a, b):
    return h_time[a] < h_time[b] or (h_time[a] == h_time[b] and h_seq[a] < h_seq[b])


@njit(cache=True)
def _heap_swap(h_time, h_seq, h_job, a, b):
    h_time[a], h_time[b] = h_time[b], h_time[a]
    h_seq[a], h_seq[b] = h_seq[b], h_seq[a]
    h_job[a], h_job[b] = h_job[b], h_job[a]


@njit(cache=True)
def _heap_push(iv, h_time, h_seq, h_job, t, seq, j):
    i = iv[_HEAPN]
    iv[_HEAPN] = i + 1
    h_time[i], h_seq[i], h_job[i] = t, seq, j
    while i > 0:
        p = (i - 1) // 2
        if not _heap_less(h_time, h_seq, i, p):
            break
        _heap_swap(h_time, h_seq, h_job, i, p)
        i = p


@njit(cache=True)
def _heap_pop(iv, h_time, h_seq, h_job):
    j = h_job[0]
    m = iv[_HEAPN] - 1
    iv[_HEAPN] = m
    if m > 0:
        h_time[0], h_seq[0], h_job[0] = h_time[m], h_seq[m], h_job[m]
        i = 0
        while True:
            c = 2 * i + 1
            if c >= m:
                break
            if c + 1 < m and _heap_less(h_time, h_seq, c + 1, c):
                c += 1
            if not _heap_less(h_time, h_seq, c, i):
                break
            _heap_swap(h_time, h_seq, h_job, i, c)
            i = c
    return j


@njit(cache=True)
def _enqueue(iv, j, key, qnext, qprev, req, state):
    """Insert queued job ``j`` into the linked list, sorted by ``key`` (ties: later behind)."""
    state[j] = _QUEUED
    p = iv[_TAIL]
    while p >= 0 and key[p] > key[j]:
        p = qprev[p]
    nx = qnext[p] if p >= 0 else iv[_HEAD]
    _join(iv, qnext, qprev, p, j)
    _join(iv, qnext, qprev, j, nx)
    iv[_QLEN] += 1
    iv[_QREQ] += req[j]


@njit(cache=True)
def _join(iv, qnext, qprev, a, b):
    """Make ``b`` follow ``a`` in the queue list (-1: the list's head or tail)."""
    if a >= 0:
        qnext[a] = b
    else:
        iv[_HEAD] = b
    if b >= 0:
        qprev[b] = a
    else:
        iv[_TAIL] = a


@njit(cache=True)
def _unlink(iv, j, qnext, qprev, req):
    _join(iv, qnext, qprev, qprev[j], qnext[j])
    iv[_QLEN] -= 1
    iv[_QREQ] -= req[j]


@njit(cache=True)
def _finish(iv, fv, j, state, end_time, running, req, gpu_of, gpu_off, gpu_load, gpu_node,
            node_free, fin_batch):
    now = fv[_NOW]
    freed = 0
    for k in range(gpu_off[j], gpu_off[j] + req[j]):
        g = gpu_of[k]
        gpu_load[g] -= 1
        if gpu_load[g] == 0:
            node_free[gpu_node[g]] += 1
            freed += 1
    iv[_FREE] += freed
    state[j] = _FINISHED
    end_time[j] = now
    iv[_DONE] += 1
    fin_batch[iv[_NFIN]] = j
    iv[_NFIN] += 1
    m = iv[_NRUN]
    i = 0
    while running[i] != j:
        i += 1
    for k in range(i, m - 1):
        running[k] = running[k + 1]
    iv[_NRUN] = m - 1


@njit(cache=True)
def _next_decision(iv, fv, submit, key, req, state, end_time, qnext, qprev, running, h_time, h_seq,
                   h_job, gpu_of, gpu_off, gpu_load, gpu_node, node_free, fin_batch):
    """The engine's ``next_decision`` (one batch of simultaneous arrivals and completions)."""
    iv[_ACTED] = 0
    iv[_NEW_LO] = iv[_NEXT]
    iv[_NEW_HI] = iv[_NEXT]
    iv[_NFIN] = 0
    n = iv[_N]
    while True:
        nxt = iv[_NEXT]
        if nxt >= n and iv[_QLEN] == 0 and iv[_NRUN] == 0:
            return False
        t_arr = submit[nxt] if nxt < n else _INF
        t_evt = h_time[0] if iv[_HEAPN] > 0 else _INF
        t = t_arr if t_arr < t_evt else t_evt
        if t == _INF:
            if iv[_QLEN] > 0:
                iv[_ENG_STALLED] = 1
            return False
        _advance_clock(iv, fv, t)
        changed = False
        if t_arr <= t:
            while nxt < n and submit[nxt] <= t:
                _enqueue(iv, nxt, key, qnext, qprev, req, state)
                nxt += 1
            iv[_NEXT] = nxt
            iv[_NEW_HI] = nxt
            changed = True
        while iv[_HEAPN] > 0 and h_time[0] <= t:
            j = _heap_pop(iv, h_time, h_seq, h_job)
            _finish(iv, fv, j, state, end_time, running, req, gpu_of, gpu_off, gpu_load, gpu_node,
                    node_free, fin_batch)
            changed = True
        if changed:
            iv[_DECISIONS] += 1
            return True


@njit(cache=True)
def _take_node(node, k, pos, gpu_of, gpu_load, node_first_gpu):
    """Write the first ``k`` free GPUs of ``node`` to ``gpu_of[pos:]``; the next position."""
    g = node_first_gpu[node]
    while k > 0:
        if gpu_load[g] == 0:
            gpu_of[pos] = g
            pos += 1
            k -= 1
        g += 1
    return pos


@njit(cache=True)
def _place(iv, j, req, node_free, gpu_of, gpu_off, gpu_load, node_first_gpu):
    """Choose GPUs for job ``j`` into ``gpu_of`` (the placement's rules); False if it does not
    fit."""
    n = req[j]
    pos = gpu_off[j]
    nodes = iv[_NODES]
    if n > iv[_FREE]:
        return False
    if iv[_FIRST_FIT] == 1:
        return _take_from_nodes(np.arange(nodes), n, pos, node_free, gpu_of, gpu_load, node_first_gpu)
    if n <= iv[_MAX_NODE]:  # best fit: the first node with the least non-negative slack
        best = -1
        for v in range(nodes):
            if node_free[v] >= n and (best < 0 or node_free[v] < node_free[best]):
                best = v
        if best < 0:
            return False
        _take_node(best, n, pos, gpu_of, gpu_load, node_first_gpu)
        return True
    order = np.argsort(-node_free, kind="mergesort")  # most free first, stable
    return _take_from_nodes(order, n, pos, node_free, gpu_of, gpu_load, node_first_gpu)


@njit(cache=True)
def _take_from_nodes(order, n, pos, node_free, gpu_of, gpu_load, node_first_gpu):
    """Take free GPUs from the nodes in ``order`` until ``n`` are written to ``gpu_of[pos:]``;
    False if too few."""
    need = n
    for v in order:
        k = node_free[v] if node_free[v] < need else need
        if k > 0:
            pos = _take_node(v, k, pos, gpu_of, gpu_load, node_first_gpu)
            need -= k
            if need == 0:
                return True
    return False


@njit(cache=True)
def _start(iv, fv, j, req, work, pred, state, first_start, pred_end, qnext, qprev, running, h_time,
           h_seq, h_job, gpu_of, gpu_off, gpu_load, gpu_node, node_free, node_first_gpu):
    if not _place(iv, j, req, node_free, gpu_of, gpu_off, gpu_load, node_first_gpu):
        return False
    now = fv[_NOW]
    _unlink(iv, j, qnext, qprev, req)
    state[j] = _RUNNING
    if first_start[j] != first_start[j]:
        first_start[j] = now
    newly = 0
    for k in range(gpu_off[j], gpu_off[j] + req[j]):
        g = gpu_of[k]
        if gpu_load[g] == 0:
            node_free[gpu_node[g]] -= 1
            newly += 1
        gpu_load[g] += 1
    iv[_FREE] -= newly
    running[iv[_NRUN]] = j
    iv[_NRUN] += 1
    iv[_SEQ] += 1
    _heap_push(iv, h_time, h_seq, h_job, now + (work[j] - 0.0) / 1.0, iv[_SEQ], j)
    iv[_ACTED] = 1
    pred_end[j] = now + pred[j]
    return True


@njit(cache=True)
def _fits(iv, g, node_free):
    """Whether a gang of ``g`` GPUs fits now (the builder's rule for the placement)."""
    free = iv[_FREE]
    if iv[_NODE_RULE] == 1:
        largest = 0
        for v in range(iv[_NODES]):
            if node_free[v] > largest:
                largest = node_free[v]
        if iv[_ALL_SMALL] == 1:
            return g <= largest
        return g <= (largest if g <= iv[_MAX_NODE] else free)
    return g <= free


@njit(cache=True)
def _update_mask(iv, req, qnext, node_free, slots, mask):
    """The visible window and its mask; whether a visible job fits."""
    K = iv[_K]
    n = 0
    j = iv[_HEAD]
    while j >= 0 and n < K:
        slots[n] = j
        n += 1
        j = qnext[j]
    iv[_NSLOTS] = n
    iv[_LARGEST] = -1
    free = iv[_FREE]
    anyfit = False
    if n == 0 or free == 0:
        for i in range(K):
            mask[i] = False
        return False
    if iv[_NODE_RULE] == 1:
        largest = 0
        for v in range(iv[_NODES]):
            if node_free[v] > largest:
                largest = node_free[v]
        iv[_LARGEST] = largest
        big = iv[_MAX_NODE]
        for i in range(n):
            g = req[slots[i]]
            if iv[_ALL_SMALL] == 1:
                f = g <= largest
            else:
                f = g <= (largest if g <= big else free)
            mask[i] = f
            anyfit = anyfit or f
    else:
        for i in range(n):
            f = req[slots[i]] <= free
            mask[i] = f
            anyfit = anyfit or f
    for i in range(n, K):
        mask[i] = False
    return anyfit


@njit(cache=True)
def _update_features(iv, fv, submit, req, gpus_feat, pred_feat, work_feat, pred_end, rank, running,
                     node_free, bucket_of, slots, mask, qbuf, cbuf, rbuf, obuf):
    now = fv[_NOW]
    n = iv[_NSLOTS]
    free = iv[_FREE]
    gpus_total = iv[_GPUS]
    inv_free = 1.0 / free if free > 0 else _INF
    qtot = 0
    for i in range(n):
        j = slots[i]
        qtot += req[j]
        wait = math.log1p((now - submit[j]) * (1 / 60.0)) * (1.0 / _LOG_TIME_CAP)
        share = req[j] * inv_free
        o = i * _FEATURES
        qbuf[o] = 1.0
        qbuf[o + 1] = 1.0 if mask[i] else 0.0
        qbuf[o + 2] = gpus_feat[j]
        qbuf[o + 3] = wait if wait < 1.0 else 1.0
        qbuf[o + 4] = pred_feat[j]
        qbuf[o + 5] = work_feat[j]
        qbuf[o + 6] = rank[i]
        qbuf[o + 7] = share if share < 1.0 else 1.0
    for o in range(n * _FEATURES, iv[_FILLED] * _FEATURES):
        qbuf[o] = 0.0
    iv[_FILLED] = n
    largest = iv[_LARGEST]
    if largest < 0:
        largest = 0
        for v in range(iv[_NODES]):
            if node_free[v] > largest:
                largest = node_free[v]
    nodes = iv[_NODES]
    counts = np.zeros(_FREE_BUCKETS, dtype=np.int64)
    for v in range(nodes):
        counts[bucket_of[node_free[v]]] += 1
    inv_nodes = 1.0 / nodes
    if iv[_SMALL] == 1:  # the Python builder's list path: products in float64
        for b in range(_FREE_BUCKETS):
            cbuf[b] = counts[b] * inv_nodes
    else:  # its numpy path: counts scaled in float32
        for b in range(_FREE_BUCKETS):
            cbuf[b] = np.float32(counts[b]) * np.float32(inv_nodes)
    cbuf[_FREE_BUCKETS] = 1.0 - free / gpus_total
    cbuf[_FREE_BUCKETS + 1] = largest / iv[_MAX_NODE]
    m = iv[_NRUN]
    if m:
        first = _INF
        total = 0.0
        work = 0.0
        for i in range(m):
            j = running[i]
            e = pred_end[j]
            total += e
            work += e * req[j]
            if e < first:
                first = e
        work -= now * (gpus_total - free)
        rbuf[0] = m / gpus_total
        rbuf[1] = _squash(first - now)
        rbuf[2] = _squash(total / m - now)
        w = (work if work > 0.0 else 0.0) / (gpus_total * _TIME_CAP)
        rbuf[3] = w if w < 1.0 else 1.0
    else:
        for i in range(4):
            rbuf[i] = 0.0
    qlen = iv[_QLEN]
    extra = qlen - n
    if extra > 0:
        a = math.log1p(extra) / _LOG_COUNT_CAP
        obuf[0] = a if a < 1.0 else 1.0
        b = (iv[_QREQ] - qtot) / gpus_total
        obuf[1] = b if b < 1.0 else 1.0
    else:
        obuf[0] = 0.0
        obuf[1] = 0.0
    obuf[2] = (iv[_N] - iv[_NEXT]) / (iv[_N] if iv[_N] > 1 else 1)
    c = math.log1p(qlen) / _LOG_COUNT_CAP
    obuf[3] = c if c < 1.0 else 1.0


@njit(cache=True)
def _episode(op, slot, iv, fv, jf, ji, pos, h_time, cl, gpu_of, rank, slots, order, mask, obs):
    """One env transition. ``op`` 0: the first decision point of an episode (``reset``); 1: start
    the job in visible slot ``slot`` (``slot == K``: WAIT); 2 (``action_mode="priority"``): try
    the visible slots ``order[:slot]`` in turn, start each that fits, then advance. Returns
    whether the episode ended; -1 when a start did not fit (the caller raises).

    The arguments are packed (numba's call overhead grows with their number): per-job floats
    ``jf`` and ints ``ji`` by row (``_JF_*``, ``_JI_*``), position-indexed int lists ``pos``
    (``_POS_*``), the cluster's int arrays ``cl`` (offsets in the registers), and the
    observation buffers ``obs`` (queue, cluster, running, overflow)."""
    submit, work, pred = jf[_JF_SUBMIT], jf[_JF_WORK], jf[_JF_PRED]
    gpus_feat, pred_feat, work_feat = jf[_JF_GPUS_FEAT], jf[_JF_PRED_FEAT], jf[_JF_WORK_FEAT]
    first_start, end_time, pred_end = jf[_JF_FIRST_START], jf[_JF_END_TIME], jf[_JF_PRED_END]
    req, key, state = ji[_JI_REQ], ji[_JI_KEY], ji[_JI_STATE]
    qnext, qprev, gpu_off = ji[_JI_QNEXT], ji[_JI_QPREV], ji[_JI_GPU_OFF]
    running, h_seq, h_job, fin_batch = pos[_POS_RUNNING], pos[_POS_HSEQ], pos[_POS_HJOB], pos[_POS_FIN]
    nodes, gpus = iv[_NODES], iv[_GPUS]
    node_free = cl[:nodes]
    gpu_load = cl[nodes:nodes + gpus]
    gpu_node = cl[nodes + gpus:nodes + 2 * gpus]
    node_first_gpu = cl[nodes + 2 * gpus:2 * nodes + 2 * gpus + 1]
    bucket_of = cl[2 * nodes + 2 * gpus + 1:]
    K = iv[_K]
    qn = K * _FEATURES
    qbuf = obs[:qn]
    cbuf = obs[qn:qn + _FREE_BUCKETS + 2]
    rbuf = obs[qn + _FREE_BUCKETS + 2:qn + _FREE_BUCKETS + 6]
    obuf = obs[qn + _FREE_BUCKETS + 6:qn + _FREE_BUCKETS + 10]
    n = iv[_N]
    ended = False
    settle = True
    if op == 0:
        if not _next_decision(iv, fv, submit, key, req, state, end_time, qnext, qprev, running,
                              h_time, h_seq, h_job, gpu_of, gpu_off, gpu_load, gpu_node, node_free,
                              fin_batch):
            ended = True
            settle = False
    elif op == 2:  # priority: start every visible job that fits, in ``order``, then advance
        for r in range(slot):
            j = slots[order[r]]
            if _fits(iv, req[j], node_free):
                if not _start(iv, fv, j, req, work, pred, state, first_start, pred_end, qnext, qprev,
                              running, h_time, h_seq, h_job, gpu_of, gpu_off, gpu_load, gpu_node,
                              node_free, node_first_gpu):
                    return -1
        ended = not _advance(iv, fv, submit, key, req, state, end_time, qnext, qprev, running, h_time,
                             h_seq, h_job, gpu_of, gpu_off, gpu_load, gpu_node, node_free, fin_batch)
        settle = not ended
    else:
        a = slot
        if a == K and iv[_NRUN] == 0 and iv[_NEXT] == n:
            for i in range(K):  # WAIT would stall forever: start the first visible job that fits
                if mask[i]:
                    a = i
                    iv[_FORCED] += 1
                    break
        if a < K:
            if not _start(iv, fv, slots[a], req, work, pred, state, first_start, pred_end, qnext,
                          qprev, running, h_time, h_seq, h_job, gpu_of, gpu_off, gpu_load, gpu_node,
                          node_free, node_first_gpu):
                return -1
        else:
            ended = not _advance(iv, fv, submit, key, req, state, end_time, qnext, qprev, running,
                                 h_time, h_seq, h_job, gpu_of, gpu_off, gpu_load, gpu_node,
                                 node_free, fin_batch)
            settle = not ended
    if settle:  # advance while no visible job fits
        while True:
            if iv[_FREE] == 0 and iv[_NRUN] > 0:
                if not _advance(iv, fv, submit, key, req, state, end_time, qnext, qprev, running,
                                h_time, h_seq, h_job, gpu_of, gpu_off, gpu_load, gpu_node,
                                node_free, fin_batch):
                    ended = True
                    break
                continue
            if _update_mask(iv, req, qnext, node_free, slots, mask):
                break
            if not _advance(iv, fv, submit, key, req, state, end_time, qnext, qprev, running, h_time,
                            h_seq, h_job, gpu_of, gpu_off, gpu_load, gpu_node, node_free,
                            fin_batch):
                ended = True
                break
    if ended:
        _update_mask(iv, req, qnext, node_free, slots, mask)
    _update_features(iv, fv, submit, req, gpus_feat, pred_feat, work_feat, pred_end, rank, running,
                     node_free, bucket_of, slots, mask, qbuf, cbuf, rbuf, obuf)
    return 1 if ended else 0


@njit(cache=True)
def _advance(iv, fv, submit, key, req, state, end_time, qnext, qprev, running, h_time, h_seq, h_job,
             gpu_of, gpu_off, gpu_load, gpu_node, node_free, fin_batch):
    """The env's ``_advance``: the next decision point; False when the episode is over."""
    if iv[_DONE] == iv[_N]:
        return False
    if iv[_NRUN] == 0 and iv[_NEXT] == iv[_N]:
        iv[_STALLED] = 1
        return False
    return _next_decision(iv, fv, submit, key, req, state, end_time, qnext, qprev, running, h_time,
                          h_seq, h_job, gpu_of, gpu_off, gpu_load, gpu_node, node_free, fin_batch)


# ----------------------------------------------------------------------------- Python side
_noticed = False  # the compile notice was given (or not needed) in this process


def cache_is_stale() -> bool:
    """Whether numba's on-disk cache of the kernel is missing or out of date (numba's own index
    check), so that the first env compiles it, which takes a while: say so. False where numba's
    internals are not the ones this reads."""
    try:
        return not _episode._cache._cache_file._load_index()
    except AttributeError:
        return False


class Status(NamedTuple):
    """What :meth:`CompiledEpisode.status` reports."""

    now: float
    jobs_in_system_seconds: float
    busy_gpu_seconds: float
    queued: int
    running: int
    busy_gpus: int
    finished: int
    forced_starts: int
    stalled: bool


class CompiledEpisode:
    """The compiled state of one env's episodes on one cluster.

    Args:
        spec: the cluster.
        placement: ``"consolidated"`` or ``"first-fit"``.
        window: K.
        rank: the builder's per-slot rank features (K floats).
        bucket_of: the builder's free-GPU bucket of each free count (``max node + 1`` ints).
    """

    def __init__(self, spec: ClusterSpec, placement: str, window: int, rank: list[float],
                 bucket_of: np.ndarray) -> None:
        global _noticed
        if not _noticed and not _episode.signatures and cache_is_stale():
            print("dlsched-gym: compiling the environment's kernel (numba; first use only, about "
                  "20 s)", file=sys.stderr, flush=True)
        _noticed = True
        self.spec = spec
        self.K = int(window)
        iv = self.iv = np.zeros(_IREGS, dtype=np.int64)
        self.fv = np.zeros(_FREGS, dtype=np.float64)
        iv[_K] = self.K
        iv[_NODE_RULE] = 1 if placement == "consolidated" else 0
        iv[_FIRST_FIT] = 1 if placement == "first-fit" else 0
        iv[_MAX_NODE] = spec.max_node_gpus
        iv[_GPUS] = spec.num_gpus
        iv[_NODES] = spec.num_nodes
        iv[_SMALL] = 1 if spec.num_nodes <= 64 else 0
        self.rank = np.asarray(rank, dtype=np.float64)
        nodes, gpus = spec.num_nodes, spec.num_gpus
        # cluster ints: node_free | gpu_load | gpu_node | node_first_gpu | bucket_of
        self._cl0 = np.concatenate([np.asarray(spec.node_gpus, dtype=np.int64),
                                    np.zeros(gpus, dtype=np.int64),
                                    np.asarray(spec.gpu_node, dtype=np.int64),
                                    np.asarray(spec.node_first_gpu, dtype=np.int64),
                                    np.asarray(bucket_of, dtype=np.int64)])
        self.cl = self._cl0.copy()
        self.node_free = self.cl[:nodes]
        self.gpu_load = self.cl[nodes:nodes + gpus]
        self.slots = np.zeros(self.K, dtype=np.int64)
        #: slot order of a priority-mode transition (its first ``slot`` entries)
        self.order = np.zeros(self.K, dtype=np.int64)

    def bind(self, submit: np.ndarray, work: np.ndarray, req: np.ndarray, pred: np.ndarray,
             by_duration: bool, gpus_feat: list[float], pred_feat: list[float],
             work_feat: list[float]) -> None:
        """Start an episode on these jobs (the builder's static per-job features)."""
        n = len(req)
        iv, fv = self.iv, self.fv
        iv[:_K] = 0
        iv[_N] = n
        iv[_FREE] = self.spec.num_gpus
        iv[_HEAD] = iv[_TAIL] = -1
        iv[_LARGEST] = -1
        fv[:] = 0.0
        jf = self.jf = np.zeros((9, n), dtype=np.float64)
        jf[_JF_SUBMIT] = submit
        jf[_JF_WORK] = work
        jf[_JF_PRED] = pred
        jf[_JF_GPUS_FEAT] = gpus_feat
        jf[_JF_PRED_FEAT] = pred_feat
        jf[_JF_WORK_FEAT] = work_feat
        jf[_JF_FIRST_START] = np.nan
        jf[_JF_END_TIME] = np.nan
        ji = self.ji = np.full((6, n), -1, dtype=np.int64)
        ji[_JI_REQ] = req
        req = ji[_JI_REQ]
        iv[_ALL_SMALL] = 1 if n == 0 or int(req.max()) <= self.spec.max_node_gpus else 0
        if by_duration:  # rank by (predicted duration, index): the stable argsort's order
            ji[_JI_KEY, np.argsort(jf[_JF_PRED], kind="stable")] = np.arange(n)
        else:
            ji[_JI_KEY] = np.arange(n)
        ji[_JI_STATE] = 0
        ji[_JI_GPU_OFF, 0] = 0
        np.cumsum(req[:-1], out=ji[_JI_GPU_OFF, 1:])
        self.gpu_of = np.zeros(int(req.sum()), dtype=np.int64)
        self.pos = np.zeros((4, n), dtype=np.int64)
        self.h_time = np.zeros(n, dtype=np.float64)
        self.cl[:] = self._cl0

    def transition(self, op: int, slot: int, mask: np.ndarray, obs: np.ndarray) -> int:
        """Run :func:`_episode` (``obs``: the builder's flat buffer); see there."""
        return _episode(op, slot, self.iv, self.fv, self.jf, self.ji, self.pos, self.h_time,
                        self.cl, self.gpu_of, self.rank, self.slots, self.order, mask, obs)

    def status(self) -> Status:
        """The numbers the env reports after a transition."""
        iv = self.iv.tolist()
        now, busy, _, jis = self.fv.tolist()
        return Status(now, jis, busy, iv[_QLEN], iv[_NRUN], iv[_GPUS] - iv[_FREE], iv[_DONE],
                      iv[_FORCED], iv[_STALLED] == 1)

    @property
    def num_slots(self) -> int:
        """Jobs in the visible window."""
        return int(self.iv[_NSLOTS])

    def slot_list(self) -> list[int]:
        """Job ids in the visible slots."""
        return self.slots[:self.iv[_NSLOTS]].tolist()

    # --------------------------------------------------------------- write-back
    def write_back(self, eng, builder) -> None:
        """Copy the complete state into the Python engine ``eng`` and observation ``builder``
        (as the Python backend would have left them)."""
        iv, fv = self.iv, self.fv
        n = int(iv[_N])
        state = self.ji[_JI_STATE].tolist()
        first = self.jf[_JF_FIRST_START].tolist()
        end = self.jf[_JF_END_TIME].tolist()
        req = self.ji[_JI_REQ].tolist()
        work = self.jf[_JF_WORK].tolist()
        eng.now = float(fv[_NOW])
        eng._next_arrival = int(iv[_NEXT])
        eng.state = state
        eng.first_start = first
        eng.end_time = end
        eng.busy_gpu_seconds = float(fv[_BUSY])
        eng.available_gpu_seconds = float(fv[_AVAIL])
        eng.jobs_in_system_seconds = float(fv[_JIS])
        eng.finished_count = int(iv[_DONE])
        eng.decisions = int(iv[_DECISIONS])
        eng.stalled = bool(iv[_ENG_STALLED])
        eng._acted = bool(iv[_ACTED])
        eng._seq = int(iv[_SEQ])
        eng.free_gpus = int(iv[_FREE])
        eng.node_free = self.node_free.copy()
        eng.gpu_load = self.gpu_load.copy()
        submit = self.jf[_JF_SUBMIT].tolist()
        arrived = int(iv[_NEXT])
        eng.queued_since = [submit[j] if j < arrived else math.nan for j in range(n)]
        run_since = [0.0] * n
        t_last = [0.0] * n
        rate = [0.0] * n
        version = [0] * n
        exec_acc = [0.0] * n
        attained = [0.0] * n
        done_work = [0.0] * n
        run_gpus = [0] * n
        for j in range(n):
            if state[j] not in (_RUNNING, _FINISHED):
                continue
            run_since[j] = t_last[j] = first[j]
            rate[j] = 1.0
            version[j] = 1
            run_gpus[j] = req[j]
            if state[j] == _FINISHED:  # what the engine's settle and release leave
                ran = end[j] - first[j]
                t_last[j] = end[j]
                exec_acc[j] = 0.0 + ran
                attained[j] = 0.0 + ran * req[j]
                done_work[j] = work[j]
        eng.run_since = run_since
        eng.t_last = t_last
        eng.progress_from = list(run_since)
        eng.rate = rate
        eng.version = version
        eng.exec_acc = exec_acc
        eng.attained_acc = attained
        eng.done_work = done_work
        eng.run_gpus = run_gpus
        queued = []  # in the window's order
        qnext = self.ji[_JI_QNEXT]
        j = int(iv[_HEAD])
        while j >= 0:
            queued.append(j)
            j = int(qnext[j])
        eng.queue = dict.fromkeys(sorted(queued))  # the engine's queue is in arrival order
        off = self.ji[_JI_GPU_OFF].tolist()
        eng.alloc = {j: self.gpu_of[off[j]:off[j] + req[j]].copy()
                     for j in self.pos[_POS_RUNNING, :iv[_NRUN]].tolist()}
        heap = [(float(self.h_time[i]), _COMPLETION, int(self.pos[_POS_HSEQ, i]),
                 int(self.pos[_POS_HJOB, i]), 1) for i in range(int(iv[_HEAPN]))]
        heapq.heapify(heap)
        eng.heap = heap
        eng.view.new_jobs = list(range(int(iv[_NEW_LO]), int(iv[_NEW_HI])))
        eng.view.finished = self.pos[_POS_FIN, :iv[_NFIN]].tolist()
        builder.slot_list = self.slot_list()
        builder._fit = builder.mask[:len(builder.slot_list)].tolist()
        builder._largest = int(iv[_LARGEST]) if iv[_LARGEST] >= 0 else None
        builder._filled = int(iv[_NSLOTS])
        builder._pred_end = self.jf[_JF_PRED_END].tolist()
        builder.rest = (np.array(queued[self.K:], dtype=np.int64)
                        if builder.by_duration and len(queued) > 1 else None)
