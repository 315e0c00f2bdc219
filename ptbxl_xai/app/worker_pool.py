"""Model calls in worker processes, so the server process only speaks HTTP.

The server process is bound by the GIL: parsing HTTP and multipart, preparing a record and calling the
model all take turns on one core while the second waits. Measured with benchmarks/app_load.py
(16 clients, 2 cores), in-process predictions cost 4-5 ms of server CPU each and the server used one
core; see the README for the figures with these pools.

Two pools of spawned processes, each worker with the run loaded once (its own `RunService`):
- predictions (`serve.predict_process`): `serve.predict_workers` (1) workers at the server's priority.
  A worker gets the raw request body and returns the JSON answer (multipart parsing, WFDB reading,
  conditioning, the model, encoding) while the server reads the next request: the processes use both
  cores. Its workers import neither shap nor lime;
- explanations (`serve.explain_process`): on 2 cores a SHAP + LIME request is ~450 model calls plus
  Python-heavy bookkeeping (shap's permutation loop, LIME's ridge fits). Reniced
  (`serve.explain_nice`), the scheduler runs it only on CPU time the predictions leave: predictions
  come first, as the page promises. Its workers explain one test record at start (warm-up).

A request whose client disconnects is dropped: while it waits for a worker it leaves the queue, and
while it runs its slot's stop flag (shared memory) is raised, which the worker's model calls check
before every batch, so the worker is free again within one batch of model calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial

from ptbxl_xai.app.guard import RETRY_AFTER_S, ClientError
from ptbxl_xai.app.service import RunService, set_torch_threads, warm_up

log = logging.getLogger(__name__)

POLL_S = 0.25  # how often a waiting or running request checks whether its client is still there
# the first check comes sooner: a client that left at once (a reload, a cancelled request) frees its slot before
# the work is under way, and a check never depends on the work outlasting a whole POLL_S
FIRST_POLL_S = 0.02
_SERVICE = None  # the worker process's own RunService
_STOP = None  # the pool's stop flags, one per slot (shared memory)


CLIENT_GONE = 499  # the status of an answer nobody reads (nginx's "client closed request")


class ClientGone(Exception):
    """The request's client disconnected; its work was dropped or stopped."""


def _init_worker(results: str, run: str, config: dict, threads: int, nice: int, warm: str | None, stop) -> None:
    global _SERVICE, _STOP
    _STOP = stop
    if nice:
        os.nice(nice)
    set_torch_threads(threads)
    _SERVICE = RunService(results, run, config)
    if warm == "explain":
        warm_up(_SERVICE)
    elif warm == "predict":  # first-call costs of torch and the filters, off the first user's request
        _SERVICE.predict(_SERVICE.test_record(int(_SERVICE.test_ids[0])), include_signal=True)
    freeze_heap()


def freeze_heap() -> None:
    """Move everything allocated so far (torch, shap, the run) out of the garbage collector's sight:
    a full collection over it takes ~190 ms here, a pause a request would wait out at random."""
    gc.collect()
    gc.freeze()


def _explain(record, label: int, slot: int | None = None) -> dict:
    return _SERVICE.explain(record, label, should_stop=None if slot is None else (lambda: _STOP[slot] != 0))


def _counterfactual(record, label: int, slot: int | None = None) -> dict:
    return _SERVICE.counterfactual(record, label, should_stop=None if slot is None else (lambda: _STOP[slot] != 0))


def _predict(body: bytes, content_type: str | None, cap: int, tmp_root) -> bytes:
    return _SERVICE.predict_form(body, content_type, cap, tmp_root)


class ServicePool:
    """`workers` spawned processes at niceness `nice`, each with the run loaded:
    `await pool.explain(record, label)`, `await pool.predict(body, content_type, cap, tmp_root)`.
    A RecordError raised in a worker is raised again in the caller.

    The pool hands a worker at most one request at a time; the others wait here, at most `max_queued`
    of them (None: no bound), and a request beyond that gets 503 with Retry-After. So when a worker
    dies (killed, out of memory), only the request it was running is lost: a new executor is started at
    once and the waiting requests go to it."""

    def __init__(
        self,
        results,
        run: str,
        config: dict,
        workers: int,
        threads: int,
        nice: int,
        warm: str | None,
        role: str,
        max_queued: int | None = None,
    ):
        # spawn, not fork: the server process has threads (uvicorn, torch) that a fork would copy mid-flight
        context = multiprocessing.get_context("spawn")
        self._stop = context.Array("b", workers, lock=False)  # slot k's request: stop (1) or go on (0)
        self._free = list(range(workers))  # slots not running a request
        self._new_executor = partial(
            ProcessPoolExecutor,
            max_workers=workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(str(results), run, config, threads, nice, warm, self._stop),
        )
        self.threads = threads
        self.workers, self.role, self.max_queued, self.nice = workers, role, max_queued, nice
        self.closed = False
        self.waiting = 0  # requests waiting for a worker
        self._slots = asyncio.Semaphore(workers)
        self._pool, self._starting = self._start()  # loading now; `await started()` waits for it

    async def started(self) -> None:
        """Once every worker has loaded the run (and, with warm, compiled shap), not on a user's request;
        a worker that fails to start raises its error here."""
        for future in self._starting:
            await asyncio.wrap_future(future)
        log.info(
            "%d %s worker process(es) ready (nice +%d, %d torch thread(s) each)",
            self.workers,
            self.role,
            self.nice,
            self.threads,
        )

    def _start(self):
        """A new executor whose workers start loading at once (an executor starts them on demand), and
        the futures that complete once each has started."""
        pool = self._new_executor()
        return pool, [pool.submit(os.getpid) for _ in range(self.workers)]

    def niceness(self) -> int:
        """A worker's niceness (what the scheduler sees)."""
        return self._pool.submit(os.nice, 0).result()

    def worker_pid(self) -> int:
        """The process id of a worker (tests stop one to see the pool recover)."""
        return self._pool.submit(os.getpid).result()

    def frozen_objects(self) -> int:
        """Objects a worker keeps out of the garbage collector's full collections (`freeze_heap`)."""
        return self._pool.submit(gc.get_freeze_count).result()

    async def explain(self, record, label: int, gone=None) -> dict:
        """The explanation from a worker; `gone`: an async () -> bool, True once the client has disconnected,
        which drops the request (`ClientGone`) and stops its explanation in the worker."""
        return await self._call(_explain, record, label, gone=gone)

    async def counterfactual(self, record, label: int, gone=None) -> dict:
        """`RunService.counterfactual` from a worker, dropped and stopped as `explain` is when the client leaves."""
        return await self._call(_counterfactual, record, label, gone=gone)

    async def predict(self, body: bytes, content_type: str | None, cap: int, tmp_root=None) -> bytes:
        """`RunService.predict_form` in a worker: the request body in, the JSON answer out."""
        return await self._call(_predict, body, content_type, cap, tmp_root)

    async def _call(self, fn, *args, gone=None):
        """fn(*args) in a worker, once one is free. With `gone`, fn(*args, slot): when `gone()` says the client
        left, the request leaves the queue, or its slot's stop flag is raised and, once the worker has
        stopped, ClientGone is raised (see the module). Without it, a request cancelled while it runs is not
        stopped in the worker; its answer is dropped."""
        if self.max_queued is not None and self._slots.locked() and self.waiting >= self.max_queued:
            raise ClientError(
                503,
                f"{self.waiting} {self.role}s are waiting already (at most {self.max_queued}); try again shortly",
                retry_after=RETRY_AFTER_S,
            )
        self.waiting += 1
        acquiring = asyncio.ensure_future(self._slots.acquire())
        try:
            await until_client_gone(acquiring, gone, "waited for a worker")
        except BaseException:
            acquiring.cancel()  # a cancelled acquire hands a slot it was just given to the next waiter
            raise
        finally:
            self.waiting -= 1
        slot = self._free.pop()
        try:
            pool = self._pool
            self._stop[slot] = 0
            try:
                running = asyncio.wrap_future(pool.submit(fn, *args, *((slot,) if gone else ())))
                return await stop_when_gone(running, gone, partial(self._stop.__setitem__, slot, 1))
            except BrokenProcessPool:
                if pool is self._pool and not self.closed:
                    log.error("a %s worker process stopped; starting a new one", self.role)
                    self._pool, self._starting = self._start()
                    pool.shutdown(wait=False, cancel_futures=True)
                raise ClientError(
                    503,
                    f"the {self.role} worker process stopped while handling this request (see the server log); "
                    "a new one is starting: try again in a few seconds",
                    retry_after=RETRY_AFTER_S,
                ) from None
        finally:
            self._free.append(slot)
            self._slots.release()

    def close(self) -> None:
        """Stop the workers; ones still starting (loading, warming up) are terminated, not waited for."""
        self.closed = True
        if not all(f.done() for f in self._starting):
            for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)


async def until_client_gone(task: asyncio.Future, gone, what: str):
    """Await `task`, asking `gone()` after FIRST_POLL_S and then every POLL_S; ClientGone once the client has
    disconnected (the task is left to the caller, who may still need to wait for it)."""
    if gone is None:
        return await task
    wait = FIRST_POLL_S
    while True:
        done, _ = await asyncio.wait({task}, timeout=wait)
        wait = POLL_S
        if done:
            return task.result()
        if await gone():
            log.info("client gone; its request %s and is dropped", what)
            raise ClientGone(what)


async def stop_when_gone(running: asyncio.Future, gone, stop) -> object:
    """The result of `running` (work that checks a stop signal between batches of model calls); once `gone()`
    says the client has left: `stop()`, wait for the work to end (the worker or thread is free then) and
    raise ClientGone."""
    try:
        return await until_client_gone(running, gone, "was running")
    except ClientGone:
        stop()
        with contextlib.suppress(Exception):  # CallsStopped, or whatever it finished with
            await running
        raise
