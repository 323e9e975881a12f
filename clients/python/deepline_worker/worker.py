"""The pull worker: long-polls a pool for leased tasks, runs their handlers, keeps their leases and reports outcomes.

Contract (the node's HTTP API):

- ``POST /pools/{pool}/tasks/poll`` hands out tasks already RUNNING as attempt N and leased to this worker until
  ``heartbeat_timeout_s`` after the lease; ``TASK_HEARTBEAT`` renews the lease (sent every third of the timeout).
- Every report names its ``attempt``: the node ignores (409) reports of an attempt it has moved on from, so a worker
  that lost its lease can never overwrite the outcome of the attempt that replaced it.
- A 409 on any event means the task is over for this worker; a run that is cancelling shows in the heartbeat answer's
  ``run_status`` and, when Redis is configured, at once through ``deepline:cancellations`` / ``cancelled_runs``.
- The node decides retries: a failed attempt is reported as TASK_FAILED with ``error_type`` (the exception's class
  name), and the node queues the next attempt or fails the task. Execution is therefore at-least-once.
"""

import asyncio
import inspect
import json
import logging
import os
import select
import threading
import time
import urllib.parse

from deepline_worker import (
    CANCELLED_RUNS, DeeplineError, TaskOver, _Redis, _encode_command, _post, _settings, _worker_id,
)

__all__ = ["Worker", "Task"]

log = logging.getLogger("deepline_worker")

CANCEL_CHANNEL = "deepline:cancellations"
_CANCELLING = ("CANCELLING", "CANCELLED")

# The node's limits (orchestrator.limits.max_value_bytes is 64 KiB by default; error_type at most 128 characters).
_MAX_ERROR_CHARS = 8000
_MAX_ERROR_TYPE_CHARS = 128


class Task:
    """One leased attempt of a task, as a handler sees it.

    ``params`` and ``inputs`` (the results of the tasks it depends on, by task id) are plain JSON values.
    ``cancelled`` is set when the run is cancelled or the attempt is no longer this worker's (the node answered 409,
    or the lease could not be renewed in time): a handler doing long work should check ``is_cancelled()`` (or wait on
    the event) between steps and return early; whatever it returns then is not reported as a success.
    """

    def __init__(self, leased, worker_id):
        self.run_id = leased["run_id"]
        self.task_id = leased["task_id"]
        self.type = leased["type"]
        self.pool = leased.get("pool")
        self.attempt = leased["attempt"]
        self.params = leased.get("params")
        self.inputs = leased.get("inputs") or {}
        self.resources = leased.get("resources") or []
        self.lease_expires_at = leased.get("lease_expires_at")
        self.heartbeat_timeout_s = leased.get("heartbeat_timeout_s") or 60
        self.traceparent = leased.get("traceparent")
        self.worker_id = worker_id
        self.cancelled = threading.Event()
        self.cancel_reason = None

    def is_cancelled(self):
        return self.cancelled.is_set()

    def __repr__(self):
        return f"Task({self.run_id}/{self.task_id} attempt {self.attempt}, type {self.type!r})"


class Worker:
    """Serves one pool: ``Worker("etl", {"sum": lambda t: sum(t.params["xs"])}).run()``.

    ``handlers`` maps a task type to ``callable(task) -> JSON-able result``; plain functions run in a thread of their
    own, ``async def`` handlers in an event loop of their own in that thread (cancelled with CancelledError when the
    task is). ``max_tasks`` is how many tasks one poll may take (1..100), ``wait_s`` how long a poll waits for work
    (0..60), ``concurrency`` how many tasks run at once (default ``max_tasks``). ``heartbeat_s`` makes heartbeats more
    frequent than the default third of the lease (a run's cancel is seen sooner without Redis); it never makes them
    rarer. ``worker_id`` defaults to ``DEEPLINE_WORKER_ID`` or ``python-<host>-<pid>``.
    """

    def __init__(self, pool, handlers, *, max_tasks=1, wait_s=20, concurrency=None, heartbeat_s=None, worker_id=None):
        if not pool or any(c.isspace() for c in pool):
            raise ValueError(f"pool must be a non-empty name without spaces, got {pool!r}")
        if not all(callable(h) for h in handlers.values()):
            raise TypeError("every handler must be callable(task)")
        if not 1 <= max_tasks <= 100:
            raise ValueError(f"max_tasks must be 1..100, got {max_tasks}")
        if not 0 <= wait_s <= 60:
            raise ValueError(f"wait_s must be 0..60, got {wait_s}")
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if heartbeat_s is not None and heartbeat_s <= 0:
            raise ValueError(f"heartbeat_s must be positive, got {heartbeat_s}")
        self.pool = pool
        self.handlers = dict(handlers)
        self.max_tasks = max_tasks
        self.wait_s = wait_s
        self.concurrency = concurrency or max_tasks
        self.heartbeat_s = heartbeat_s
        self.worker_id = worker_id or _worker_id({})
        self._stopping = threading.Event()
        self._running = False
        self._slots = threading.Condition()
        self._active = {}  # (run_id, task_id, attempt) -> _Execution
        self._watcher = None

    # ------------------------------------------------------------------ loop

    def run(self):
        """Polls and runs tasks until ``stop()`` or KeyboardInterrupt, then waits for the tasks still running.

        Poll failures (node unreachable, 5xx, 429, refused) are logged and retried after 1 s, doubling to 30 s.
        """
        self._stopping.clear()
        self._running = True
        self._watch_cancels()
        log.info("worker %s serving pool %s (types: %s)", self.worker_id, self.pool, ", ".join(sorted(self.handlers)) or "none")
        backoff = 1.0
        try:
            while not self._stopping.is_set():
                free = self._wait_for_slot()
                if free == 0:
                    break  # stopping
                try:
                    self._poll(min(self.max_tasks, free))  # starts the tasks it leased
                except DeeplineError as e:
                    log.warning("poll of pool %s failed (%s); next poll in %g s", self.pool, e, backoff)
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                backoff = 1.0
        except KeyboardInterrupt:
            log.info("interrupted: no more polls; waiting for %d running task(s) (interrupt again to abandon them)", len(self._active))
        finally:
            self._stopping.set()
            try:
                self._drain()
            except KeyboardInterrupt:
                # Their leases run out and the node runs them again (at-least-once).
                log.warning("abandoned %d running task(s): the node retries them once their lease runs out", len(self._active))
            self._running = False
            self._stop_watching()

    def run_once(self):
        """One poll (up to ``max_tasks``), then runs what it got to the end; returns how many tasks ran.

        Unlike ``run()`` a failed poll raises (DeeplineError).
        """
        self._watch_cancels()
        leased = self._poll(min(self.max_tasks, max(self._free(), 1)))
        for execution in leased:
            execution.join()
        return len(leased)

    def stop(self):
        """Ends ``run()`` after its current poll (at most ``wait_s``) and the tasks still running."""
        self._stopping.set()
        with self._slots:
            self._slots.notify_all()
        if not self._running:
            self._stop_watching()

    # ------------------------------------------------------------------ polling and slots

    def _poll(self, count):
        path = "/pools/{}/tasks/poll".format(urllib.parse.quote(self.pool, safe=""))
        body = {"worker_id": self.worker_id, "wait_s": self.wait_s, "max_tasks": count}
        # The node answers by wait_s; the margin covers its leasing and a slow network.
        answer = _post(path, body, timeout=self.wait_s + 30)
        received = time.monotonic()
        executions = []
        for leased in (answer or {}).get("tasks", []):
            execution = _Execution(self, Task(leased, self.worker_id), received)
            self._register(execution)
            execution.start()
            executions.append(execution)
        return executions

    def _free(self):
        with self._slots:
            return self.concurrency - len(self._active)

    def _wait_for_slot(self):
        with self._slots:
            while len(self._active) >= self.concurrency and not self._stopping.is_set():
                self._slots.wait()
            return 0 if self._stopping.is_set() else self.concurrency - len(self._active)

    def _register(self, execution):
        task = execution.task
        with self._slots:
            self._active[(task.run_id, task.task_id, task.attempt)] = execution
        # A cancel heard between the lease and now (the lease itself refuses runs already cancelled).
        if self._watcher is not None and self._watcher.has_cancelled(task.run_id):
            execution.cancel("the run is cancelled (Redis)")

    def _finished(self, execution):
        task = execution.task
        with self._slots:
            self._active.pop((task.run_id, task.task_id, task.attempt), None)
            self._slots.notify_all()

    def _drain(self):
        with self._slots:
            # Alive, not merely registered: an interrupt may have come between a task's registration and its start.
            while any(e.is_alive() for e in self._active.values()):
                self._slots.wait(0.5)

    # ------------------------------------------------------------------ cancels from Redis

    def _watch_cancels(self):
        # Only when Redis is configured: the package's 127.0.0.1:6379 default is a guess, not a setting.
        spec = _settings.get("redis") or os.environ.get("DEEPLINE_REDIS")
        if spec and self._watcher is None:
            self._watcher = _CancelWatcher(spec, self._run_cancelled)
            self._watcher.start()

    def _stop_watching(self):
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    def _run_cancelled(self, run_id):
        with self._slots:
            hit = [e for (r, _, _), e in self._active.items() if r == run_id]
        for execution in hit:
            execution.cancel("the run is cancelled (Redis)")


class _Execution:
    """One leased attempt: its handler thread, and a supervisor thread that heartbeats, watches the lease and reports."""

    def __init__(self, worker, task, received):
        self.worker = worker
        self.task = task
        self._timeout = task.heartbeat_timeout_s
        # The lease is measured on this machine's monotonic clock, not from lease_expires_at: the two machines' clocks
        # may disagree by more than the lease. The node started the lease before its answer left, so counting from
        # the answer's arrival is late by the network latency, which the safety margin (a sixth of the lease) covers.
        self._lease_end = received + self._timeout
        self._over = False        # the node answered 409: the task is not this worker's any more
        self._lease_lost = False  # no renewal in time: another attempt may start, this one must not report success
        self._done = threading.Event()
        self._result = None
        self._error = None
        self._thread = threading.Thread(target=self._supervise, name=f"deepline-{task.run_id}/{task.task_id}", daemon=True)

    def start(self):
        self._thread.start()

    def join(self):
        self._thread.join()

    def is_alive(self):
        return self._thread.is_alive()

    def cancel(self, reason):
        if not self.task.cancelled.is_set():
            self.task.cancel_reason = reason
            self.task.cancelled.set()
            log.info("task %s/%s attempt %d cancelled: %s", self.task.run_id, self.task.task_id, self.task.attempt, reason)

    # ------------------------------------------------------------------ supervisor

    def _supervise(self):
        task = self.task
        try:
            handler = self.worker.handlers.get(task.type)
            if handler is None:
                known = ", ".join(sorted(self.worker.handlers)) or "none"
                log.warning("task %s/%s has type %r, which this worker has no handler for (it handles: %s): reported failed",
                            task.run_id, task.task_id, task.type, known)
                self._report("TASK_FAILED", error=f"no handler for task type {task.type!r} in worker {task.worker_id} (it handles: {known})",
                             error_type="UnknownTaskType")
                return
            started = time.monotonic()
            threading.Thread(target=self._call, args=(handler,), name=f"deepline-handler-{task.run_id}/{task.task_id}", daemon=True).start()
            self._keep_lease()
            took = time.monotonic() - started
            if self._lease_lost:
                log.warning("task %s/%s attempt %d finished after its lease was lost (%.1f s): not reported; the node runs it again",
                            task.run_id, task.task_id, task.attempt, took)
            elif task.is_cancelled():
                self._report("TASK_CANCELLED", error=f"cancelled: {task.cancel_reason}")
            elif self._error is not None:
                e = self._error
                log.info("task %s/%s attempt %d failed after %.1f s: %s: %s", task.run_id, task.task_id, task.attempt, took, type(e).__name__, e)
                self._report("TASK_FAILED", error=str(e) or type(e).__name__, error_type=type(e).__name__)
            else:
                self._report_success(took)
        except Exception:  # a bug here must not take the worker down; the lease runs out and the node retries
            log.exception("task %s/%s attempt %d: supervisor failed", task.run_id, task.task_id, task.attempt)
        finally:
            self.worker._finished(self)

    def _call(self, handler):
        try:
            value = handler(self.task)
            if inspect.isawaitable(value):
                value = asyncio.run(_until_cancelled(value, self.task.cancelled))
            self._result = value
        except BaseException as e:  # SystemExit or CancelledError from a handler end the attempt like any error
            self._error = e
        finally:
            self._done.set()

    def _keep_lease(self):
        """Heartbeats until the handler returns; sets the task's cancel on a 409, a cancelled run or a lost lease."""
        margin = self._timeout / 6
        next_beat = time.monotonic() + self._interval()
        failures = 0
        while True:
            now = time.monotonic()
            beating = not (self._over or self._lease_lost)
            wait = min(next_beat, self._lease_end - margin) - now if beating else None
            if self._done.wait(None if wait is None else max(wait, 0.01)):
                return
            if not beating:
                continue
            now = time.monotonic()
            if now >= self._lease_end - margin:
                # Two attempts must never run at once: stop before the node may hand the task to someone else.
                self._lease_lost = True
                self.cancel(f"lease not renewed within {self._timeout - margin:.0f} s of its last renewal")
                continue
            if now < next_beat:
                continue
            sent = time.monotonic()
            try:
                answer = _post(self._events_path(), self._event("TASK_HEARTBEAT"),
                               timeout=max(0.5, min(30.0, self._lease_end - margin - sent)))
            except TaskOver as e:
                self._over = True
                self.cancel(f"the node ended it ({e.detail})")
                continue
            except DeeplineError as e:
                failures += 1
                if failures == 1:
                    log.warning("heartbeat of %s/%s attempt %d failed (%s); retrying until the lease is in danger",
                                self.task.run_id, self.task.task_id, self.task.attempt, e)
                # Retry sooner than the usual beat: the lease is running out.
                next_beat = time.monotonic() + max(0.5, self._interval() / 4)
                continue
            failures = 0
            answer = answer or {}
            # The node renewed the lease when it accepted the beat, after it was sent.
            self._timeout = min(self._timeout, answer.get("heartbeat_timeout_s") or self._timeout)
            self._lease_end = sent + self._timeout
            next_beat = sent + self._interval()
            if answer.get("run_status") in _CANCELLING:
                self.cancel(f"the run is {answer['run_status']}")
            elif answer.get("state") not in (None, "RUNNING"):
                self._over = True
                self.cancel(f"the task is {answer['state']}")

    def _interval(self):
        every = self._timeout / 3
        return min(every, self.worker.heartbeat_s) if self.worker.heartbeat_s else every

    # ------------------------------------------------------------------ reports

    def _report_success(self, took):
        task = self.task
        try:
            json.dumps(self._result, allow_nan=False)  # NaN and Infinity are not JSON: the node would refuse the body
        except (TypeError, ValueError) as e:
            self._report("TASK_FAILED", error=f"the handler's result is not JSON: {e}", error_type=type(e).__name__)
            return
        try:
            self._report("TASK_SUCCEEDED", result=self._result, raise_refusal=True)
            log.info("task %s/%s attempt %d succeeded in %.1f s", task.run_id, task.task_id, task.attempt, took)
        except DeeplineError as e:
            # A result the node cannot keep (too large, too deep): fail the attempt instead of leaving it to time out.
            self._report("TASK_FAILED", error=f"the node refused the result: {e.detail}", error_type="ResultRejected")

    def _report(self, event, result=None, error=None, error_type=None, raise_refusal=False):
        """Posts the attempt's last event, retrying transient failures while the lease lasts."""
        body = self._event(event, result=result, error=error, error_type=error_type)
        delay = 0.5
        while True:
            try:
                _post(self._events_path(), body)
                return
            except TaskOver as e:
                # Already over: the run was cancelled or finished, or a later attempt replaced this one.
                log.info("%s of %s/%s attempt %d not applied: %s", event, self.task.run_id, self.task.task_id, self.task.attempt, e.detail)
                return
            except DeeplineError as e:
                transient = e.status == "unreachable" or e.status in (408, 429) or (isinstance(e.status, int) and e.status >= 500)
                if not transient:
                    if raise_refusal:
                        raise
                    log.error("%s of %s/%s attempt %d refused: %s", event, self.task.run_id, self.task.task_id, self.task.attempt, e)
                    return
                if time.monotonic() + delay > self._lease_end:
                    # Past the lease the node has taken the attempt back and would refuse the report anyway.
                    log.error("%s of %s/%s attempt %d not delivered before its lease ran out (%s): the node runs the task again",
                              event, self.task.run_id, self.task.task_id, self.task.attempt, e)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _events_path(self):
        return "/runs/{}/tasks/{}/events".format(urllib.parse.quote(self.task.run_id, safe=""), urllib.parse.quote(self.task.task_id, safe=""))

    def _event(self, event, result=None, error=None, error_type=None):
        body = {"event": event, "worker_id": self.task.worker_id, "attempt": self.task.attempt}
        if result is not None:
            body["result"] = result
        if error is not None:
            body["error"] = error[:_MAX_ERROR_CHARS]
        if error_type is not None:
            body["error_type"] = error_type[:_MAX_ERROR_TYPE_CHARS]
        return body


async def _until_cancelled(awaitable, cancelled):
    """Runs an async handler, cancelling it (CancelledError inside it) once the task's cancel is set."""
    job = asyncio.ensure_future(awaitable)
    while not job.done():
        await asyncio.wait([job], timeout=0.1)
        if cancelled.is_set() and not job.done():
            job.cancel()
    return await job


# ---------------------------------------------------------------------- Redis cancels

class _CancelWatcher:
    """Follows the node's cancels as its Redis contract asks: ``SUBSCRIBE deepline:cancellations``, then
    ``SMEMBERS cancelled_runs`` after every (re)subscription (a cancel published while disconnected is only in the
    set), calling ``on_cancel(run_id)`` for each. Redis being down only delays cancels to the next heartbeat answer.
    """

    RECENT_KEPT = 10000
    PING_AFTER_S = 15
    SILENT_LIMIT_S = 45

    def __init__(self, spec, on_cancel):
        self._spec = spec
        self._address = spec.split(",")[0]  # never the password
        self._on_cancel = on_cancel
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._recent = {}  # run ids heard cancelled, oldest first (dicts keep insertion order)
        self._backoff, self._down = 1.0, False
        self._thread = threading.Thread(target=self._run, name="deepline-cancels", daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stopping.set()

    def has_cancelled(self, run_id):
        with self._lock:
            return run_id in self._recent

    def _heard(self, run_ids, replace=False):
        with self._lock:
            if replace:
                self._recent = {}
            for run_id in run_ids:
                self._recent.pop(run_id, None)
                self._recent[run_id] = True
            while len(self._recent) > self.RECENT_KEPT:
                del self._recent[next(iter(self._recent))]
        for run_id in run_ids:
            self._on_cancel(run_id)

    def _run(self):
        while not self._stopping.is_set():
            try:
                self._follow()  # returns once stopped
            except (OSError, ConnectionError, DeeplineError, ValueError) as e:
                if not self._down:
                    log.warning("Redis %s unreachable (%s): cancels reach running tasks with their heartbeat answers until it is back",
                                self._address, e)
                self._down = True
                self._stopping.wait(self._backoff)
                self._backoff = min(self._backoff * 2, 30.0)

    def _subscribed(self):
        if self._down:
            log.info("Redis %s is back: following cancels again", self._address)
        self._down, self._backoff = False, 1.0

    def _follow(self):
        """Reads the channel until stopped; raises when the connection fails or goes silent."""
        connection = _Redis(self._spec)  # connects and authenticates
        sock = connection._sock
        try:
            sock.sendall(_encode_command("SUBSCRIBE", CANCEL_CHANNEL))
            buffer = bytearray()
            heard_at = time.monotonic()
            pinged = False
            while not self._stopping.is_set():
                parsed = _parse_resp(buffer)
                if parsed is _INCOMPLETE:
                    # select with a timeout instead of a blocking read: stop() and a silent connection are noticed.
                    readable, _, _ = select.select([sock], [], [], 1.0)
                    if readable:
                        data = sock.recv(65536)
                        if not data:
                            raise ConnectionError("Redis closed the connection")
                        buffer += data
                        heard_at, pinged = time.monotonic(), False
                    elif time.monotonic() - heard_at > self.SILENT_LIMIT_S:
                        raise ConnectionError(f"no answer from Redis for {self.SILENT_LIMIT_S} s")
                    elif time.monotonic() - heard_at > self.PING_AFTER_S and not pinged:
                        sock.sendall(_encode_command("PING"))
                        pinged = True
                    continue
                message, used = parsed
                del buffer[:used]
                if not isinstance(message, list) or len(message) < 2:
                    continue
                if message[0] == "subscribe":
                    # Subscribed first, then the set: no cancel falls between the two.
                    members = self._members()
                    self._heard(members, replace=True)
                    self._subscribed()
                elif message[0] == "message" and len(message) >= 3:
                    try:
                        run_id = json.loads(message[2]).get("run_id")
                    except (ValueError, AttributeError):
                        continue
                    if run_id:
                        self._heard([run_id])
        finally:
            connection.close()


    def _members(self):
        # A connection of its own: a subscribed connection takes no other commands.
        client = _Redis(self._spec)
        try:
            return client.command("SMEMBERS", CANCELLED_RUNS) or []
        finally:
            client.close()


_INCOMPLETE = object()


def _parse_resp(buffer, pos=0):
    """One RESP2 value from ``buffer`` at ``pos``: ``(value, end)``, or _INCOMPLETE until more bytes arrive."""
    end = buffer.find(b"\r\n", pos)
    if end < 0:
        return _INCOMPLETE
    kind, line, pos = buffer[pos:pos + 1], bytes(buffer[pos + 1:end]), end + 2
    if kind == b"+":
        return line.decode(), pos
    if kind == b"-":
        raise DeeplineError("redis", line.decode())
    if kind == b":":
        return int(line), pos
    if kind == b"$":
        n = int(line)
        if n < 0:
            return None, pos
        if len(buffer) < pos + n + 2:
            return _INCOMPLETE
        return bytes(buffer[pos:pos + n]).decode(), pos + n + 2
    if kind == b"*":
        n = int(line)
        items = []
        for _ in range(max(n, 0)):
            parsed = _parse_resp(buffer, pos)
            if parsed is _INCOMPLETE:
                return _INCOMPLETE
            item, pos = parsed
            items.append(item)
        return (None if n < 0 else items), pos
    raise ConnectionError(f"unexpected Redis reply {bytes(buffer[:40])!r}")
