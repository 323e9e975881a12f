"""Deepline worker surface for Python: the seed's ``is_workflow_cancelled``, ``emit_event`` and a
cancellation-aware task wrapper, over the node's Redis contract and HTTP API.

Standard library only (no Python registry is reachable where this is built): a small RESP client for the
three Redis commands a worker needs, ``urllib`` for HTTP. Settings come from ``configure()`` or the
environment: ``DEEPLINE_URL`` (default http://127.0.0.1:8001), ``DEEPLINE_REDIS`` (``host:port`` or
``host:port,password=...`` as the node takes it; default 127.0.0.1:6379), ``DEEPLINE_KEY`` (a worker key
when the node has a keys file) and ``DEEPLINE_WORKER_ID`` (default ``python-<host>-<pid>``).

``Worker`` (deepline_worker.worker) is the pull side: it long-polls a pool for leased tasks, runs handlers, keeps
their leases with heartbeats and reports how each attempt ended.
"""

import asyncio
import http.client
import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request

__all__ = [
    "configure", "is_workflow_cancelled", "cancellation_record", "emit_event", "run_task",
    "TaskOver", "DeeplineError", "CANCELLED_RUNS", "RUN_HASH_PREFIX", "Worker", "Task",
]

# The node's Redis contract (README, "Redis contract").
CANCELLED_RUNS = "cancelled_runs"
RUN_HASH_PREFIX = "cancelled_run:"
EVENTS = ("TASK_STARTED", "TASK_HEARTBEAT", "TASK_SUCCEEDED", "TASK_FAILED", "TASK_CANCELLED")

_settings = {}


def configure(url=None, redis=None, key=None, worker_id=None):
    """Overrides the environment for this process; None leaves a setting as it is."""
    for name, value in (("url", url), ("redis", redis), ("key", key), ("worker_id", worker_id)):
        if value is not None:
            _settings[name] = value


def _setting(name, variable, default):
    return _settings.get(name) or os.environ.get(variable) or default


class DeeplineError(Exception):
    """The node refused an event (4xx other than 409) or could not be reached."""

    def __init__(self, status, detail, problem=None):
        super().__init__(f"{status}: {detail}")
        self.status = status  # the HTTP status, "unreachable" or "redis"
        self.detail = detail
        self.problem = problem or {}  # the node's problem+json body (field, current_attempt, ...), when it sent one


class TaskOver(DeeplineError):
    """409: the task is already over (cancelled, finalised): stop working on it."""


# ---------------------------------------------------------------- Redis (RESP over a socket)

def _encode_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        data = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Redis:
    def __init__(self, spec):
        parts = spec.split(",")
        host, _, port = parts[0].rpartition(":")
        options = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        self._sock = socket.create_connection((host or "127.0.0.1", int(port or 6379)), timeout=5)
        self._file = self._sock.makefile("rb")
        if "password" in options:
            self.command("AUTH", options["password"])

    def command(self, *args):
        self._sock.sendall(_encode_command(*args))
        return self._read()

    def _read(self):
        line = self._file.readline()
        if not line:
            raise ConnectionError("Redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise DeeplineError("redis", rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self._file.read(n + 2)[:-2]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ConnectionError(f"unexpected Redis reply {line!r}")

    def close(self):
        self._file.close()
        self._sock.close()


def _redis_call(*args):
    # One short connection per call keeps the client thread-safe and free of reconnect logic.
    client = _Redis(_setting("redis", "DEEPLINE_REDIS", "127.0.0.1:6379"))
    try:
        return client.command(*args)
    finally:
        client.close()


async def is_workflow_cancelled(run_id):
    """The seed's check: ``SISMEMBER cancelled_runs <run_id>``."""
    return await asyncio.to_thread(_redis_call, "SISMEMBER", CANCELLED_RUNS, run_id) == 1


async def cancellation_record(run_id):
    """The run's cancel record from Redis (run_id, reason, cancelled_by, cancelled_at), or None."""
    flat = await asyncio.to_thread(_redis_call, "HGETALL", RUN_HASH_PREFIX + run_id)
    return dict(zip(flat[::2], flat[1::2])) if flat else None


# ---------------------------------------------------------------- HTTP task events

def _worker_id(task_meta):
    return task_meta.get("worker_id") or _setting("worker_id", "DEEPLINE_WORKER_ID", f"python-{socket.gethostname()}-{os.getpid()}")


def _post(path, body, timeout=30):
    url = _setting("url", "DEEPLINE_URL", "http://127.0.0.1:8001").rstrip("/") + path
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
    key = _setting("key", "DEEPLINE_KEY", "")
    if key:
        request.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            problem = json.loads(e.read())
            detail = problem.get("detail", e.reason)
        except (ValueError, AttributeError, OSError):
            problem, detail = None, e.reason
        raise (TaskOver if e.code == 409 else DeeplineError)(e.code, detail, problem) from None
    except urllib.error.URLError as e:
        raise DeeplineError("unreachable", str(e.reason)) from None
    except (OSError, http.client.HTTPException) as e:
        # A timeout or a connection dropped mid-answer is not wrapped in URLError; to a caller it is the same.
        raise DeeplineError("unreachable", f"{type(e).__name__}: {e}") from None


async def emit_event(event, task_meta, result=None, error=None, attempt=None, error_type=None):
    """Reports a task event, as the seed's ``emit_event("TASK_CANCELLED", task_meta)``.

    ``task_meta`` needs ``run_id`` and ``task_id`` (``worker_id`` and ``attempt`` optional; ``attempt`` fences the
    report to one leased attempt). Returns the node's answer (``state``, ``run_status``, ``heartbeat_timeout_s``);
    raises TaskOver on 409, DeeplineError otherwise. A TASK_CANCELLED answered 409 returns None instead: the task was
    over already, which is the usual case when a worker finds a run cancelled before it claimed the task (the seed's
    "check cancellation before expensive operations" example does exactly that), and what the worker wanted is true.
    """
    if event not in EVENTS:
        raise ValueError(f"event must be one of {', '.join(EVENTS)}, got {event!r}")
    path = "/runs/{}/tasks/{}/events".format(urllib.parse.quote(task_meta["run_id"], safe=""), urllib.parse.quote(task_meta["task_id"], safe=""))
    body = {"event": event, "worker_id": _worker_id(task_meta)}
    if result is not None:
        body["result"] = result
    if error is not None:
        body["error"] = error
    if error_type is not None:
        body["error_type"] = error_type
    attempt = attempt if attempt is not None else task_meta.get("attempt")
    if attempt is not None:
        body["attempt"] = attempt
    try:
        return await asyncio.to_thread(_post, path, body)
    except TaskOver:
        if event == "TASK_CANCELLED":
            return None
        raise


async def run_task(task_meta, work, poll_interval=0.2):
    """Runs ``await work(task_meta)`` as the node expects of a worker, and never after a cancel.

    Checks ``cancelled_runs`` before starting (a cancelled run's task is acknowledged, not started), claims the
    task (TASK_STARTED), heartbeats at a third of the node's heartbeat_timeout_s, watches ``cancelled_runs``
    every ``poll_interval`` seconds while it runs and cancels ``work`` at once when the run appears there,
    then reports how it ended: TASK_SUCCEEDED with the result, TASK_FAILED with the error (``error_type``: the
    exception's class name, for the node's retry policy), or TASK_CANCELLED. Returns that event's name
    (TASK_CANCELLED too when the node refused the claim: the work never started).
    """
    run_id = task_meta["run_id"]
    if await is_workflow_cancelled(run_id):
        await emit_event("TASK_CANCELLED", task_meta, error="not started: the run is cancelled (cancelled_runs)")
        return "TASK_CANCELLED"
    try:
        started = await emit_event("TASK_STARTED", task_meta)
    except TaskOver:
        # The claim was refused: the run was cancelled after the check above, or the task is over or another worker's.
        # Either way it is not this worker's to run, and nothing was started.
        return "TASK_CANCELLED"
    heartbeat_every = max(0.5, (started or {}).get("heartbeat_timeout_s", 60) / 3)
    job = asyncio.ensure_future(work(task_meta))
    loop = asyncio.get_running_loop()
    next_beat = loop.time() + heartbeat_every
    try:
        while not job.done():
            await asyncio.wait([job], timeout=poll_interval)
            if job.done():
                break
            if await is_workflow_cancelled(run_id):
                job.cancel()
                await asyncio.gather(job, return_exceptions=True)
                await emit_event("TASK_CANCELLED", task_meta, error="cancelled: the run is in cancelled_runs")
                return "TASK_CANCELLED"
            if loop.time() >= next_beat:
                next_beat = loop.time() + heartbeat_every
                try:
                    await emit_event("TASK_HEARTBEAT", task_meta)
                except TaskOver:
                    # The node says the task is over (finalised): stop working on it.
                    job.cancel()
                    await asyncio.gather(job, return_exceptions=True)
                    return "TASK_CANCELLED"
    finally:
        if not job.done():
            job.cancel()
    if job.cancelled():
        await emit_event("TASK_CANCELLED", task_meta, error="cancelled: the work was cancelled")
        return "TASK_CANCELLED"
    if job.exception() is not None:
        e = job.exception()
        await emit_event("TASK_FAILED", task_meta, error=f"{type(e).__name__}: {e}", error_type=type(e).__name__)
        return "TASK_FAILED"
    await emit_event("TASK_SUCCEEDED", task_meta, result=job.result())
    return "TASK_SUCCEEDED"


# Imported last: the worker module uses the helpers above.
from deepline_worker.worker import Task, Worker  # noqa: E402
