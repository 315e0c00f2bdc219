"""Explanations in worker processes of lower priority, so predictions keep the CPU.

On 2 cores a SHAP + LIME request is ~450 model calls plus Python-heavy bookkeeping (shap's permutation
loop, LIME's ridge fits). In a thread of the server process it holds the GIL between numpy and torch
calls and shares both cores with the predictions of every other client. In its own process, reniced
(config `serve.explain_nice`), it holds no lock the server needs, and the scheduler runs it only on
CPU time the predictions leave: predictions come first, as the page promises.
Each worker loads the run once (its own `RunService`) and compiles shap's numba code at start.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger(__name__)

_SERVICE = None  # the worker process's own RunService


def _init_worker(results: str, run: str, config: dict, threads: int, nice: int, warm: bool) -> None:
    global _SERVICE
    from ecgxai.app.service import RunService, set_torch_threads, warm_up

    if nice:
        os.nice(nice)
    set_torch_threads(threads)
    _SERVICE = RunService(results, run, config)
    if warm:
        warm_up(_SERVICE)


def _explain(record, label: int) -> dict:
    return _SERVICE.explain(record, label)


class ExplainPool:
    """`workers` spawned processes, each with the run loaded; `await pool.explain(record, label)`."""

    def __init__(self, results, run: str, config: dict, workers: int, threads: int, nice: int, warm: bool = True):
        # spawn, not fork: the server process has threads (uvicorn, torch) that a fork would copy mid-flight
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(str(results), run, config, threads, nice, warm),
        )
        self.workers = workers
        self.closed = False
        # start every worker now (loading the run, compiling shap), not on the first user's request
        for future in [self._pool.submit(os.getpid) for _ in range(workers)]:
            future.result()
        log.info("%d explain worker process(es) ready (nice +%d, %d torch thread(s) each)", workers, nice, threads)

    def niceness(self) -> int:
        """A worker's niceness (what the scheduler sees)."""
        return self._pool.submit(os.nice, 0).result()

    async def explain(self, record, label: int) -> dict:
        return await asyncio.wrap_future(self._pool.submit(_explain, record, label))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.closed = True
