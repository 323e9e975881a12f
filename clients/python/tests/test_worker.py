"""deepline_worker.Worker: against a real node when DEEPLINE_URL names one (Redis optional: cancels then arrive with the
heartbeat answers), and against a stub node for what a real one cannot be made to do on cue (lose a lease, vanish)."""

import asyncio
import json
import logging
import os
import socket
import threading
import time
import unittest
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import deepline_worker
from deepline_worker import Worker

URL = os.environ.get("DEEPLINE_URL")
REDIS = os.environ.get("DEEPLINE_REDIS")


def http(method, path, body=None):
    request = urllib.request.Request(URL + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def await_run(run_id, condition, what, within=30.0):
    deadline = time.monotonic() + within
    while True:
        run = http("GET", f"/runs/{run_id}")
        if condition(run):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within} s: {what}; last: {run}")
        time.sleep(0.05)


def tasks_of(run):
    return {t["task_id"]: t for t in run["tasks"]}


def run_in_thread(worker):
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


@unittest.skipUnless(URL, "needs DEEPLINE_URL (a running node)")
class WorkerAgainstNode(unittest.TestCase):
    def setUp(self):
        # A pool of its own per test: no other test's worker takes these tasks.
        self.pool = "py-" + uuid.uuid4().hex[:10]

    def submit(self, *tasks):
        run_id = "py-" + uuid.uuid4().hex[:12]
        http("POST", "/runs", {"run_id": run_id, "tasks": [dict(t, pool=self.pool) for t in tasks]})
        return run_id

    def run_until(self, worker, run_id, condition, what, within=30.0):
        deadline = time.monotonic() + within
        while True:
            worker.run_once()
            run = http("GET", f"/runs/{run_id}")
            if condition(run):
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached within {within} s: {what}; last: {run}")

    def test_a_worker_drains_its_pool_and_the_results_land_in_the_run(self):
        run_id = self.submit(
            {"task_id": "a", "type": "sum", "params": {"xs": [1, 2, 3]}},
            {"task_id": "b", "type": "sum", "params": {"xs": [4, 5]}},
            {"task_id": "total", "type": "total", "depends_on": ["a", "b"]})
        seen_inputs = []

        async def total(task):  # async handlers run in an event loop of their own
            await asyncio.sleep(0)
            seen_inputs.append(task.inputs)
            return sum(task.inputs.values())

        worker = Worker(self.pool, {"sum": lambda t: sum(t.params["xs"]), "total": total}, max_tasks=10, wait_s=1)
        thread = run_in_thread(worker)
        try:
            run = await_run(run_id, lambda r: r["status"] == "SUCCEEDED", "the worker ran every task")
        finally:
            worker.stop()
            thread.join(10)
        self.assertFalse(thread.is_alive(), "run() returns after stop()")
        tasks = tasks_of(run)
        self.assertEqual({"a": 6, "b": 9, "total": 15}, {k: t["result"] for k, t in tasks.items()})
        self.assertEqual([{"a": 6, "b": 9}], seen_inputs)
        self.assertEqual({1}, {t["attempts"] for t in tasks.values()})
        self.assertEqual({worker.worker_id}, {t["worker_id"] for t in tasks.values()})

    def test_a_failed_attempt_is_retried_by_the_node_and_the_second_succeeds(self):
        run_id = self.submit({"task_id": "flaky", "type": "flaky", "params": {"x": 7},
                              "retry": {"max_attempts": 2, "initial_interval_s": 0}})
        attempts = []

        def flaky(task):
            attempts.append(task.attempt)
            if task.attempt == 1:
                raise ConnectionResetError("the warehouse hung up")
            return {"x": task.params["x"], "attempt": task.attempt}

        worker = Worker(self.pool, {"flaky": flaky}, wait_s=1)
        run = self.run_until(worker, run_id, lambda r: r["status"] in ("SUCCEEDED", "FAILED"), "the retry ran")
        task = tasks_of(run)["flaky"]
        self.assertEqual("SUCCEEDED", run["status"], run)
        self.assertEqual([1, 2], attempts)
        self.assertEqual(2, task["attempts"])
        self.assertEqual({"x": 7, "attempt": 2}, task["result"])

    def test_a_task_of_an_unknown_type_fails(self):
        run_id = self.submit({"task_id": "odd", "type": "no-such-type", "retry": {"max_attempts": 3, "non_retryable_errors": ["UnknownTaskType"]}})
        worker = Worker(self.pool, {"sum": lambda t: 0}, wait_s=1)
        with self.assertLogs("deepline_worker", logging.WARNING) as logs:
            run = self.run_until(worker, run_id, lambda r: r["status"] in ("SUCCEEDED", "FAILED"), "the task ended")
        self.assertIn("no handler", logs.output[0])
        task = tasks_of(run)["odd"]
        self.assertEqual("FAILED", run["status"])
        self.assertEqual("UnknownTaskType", task["error_type"])
        self.assertIn("no-such-type", task["error"])
        self.assertEqual(1, task["attempts"])

    def test_a_cancelled_run_sets_the_handlers_cancel_and_the_worker_acknowledges_it(self):
        run_id = self.submit({"task_id": "long", "type": "long"})
        started, reasons = threading.Event(), []

        def long(task):
            started.set()
            if not task.cancelled.wait(30):
                raise TimeoutError("never cancelled")
            reasons.append(task.cancel_reason)
            return "whatever it returns now is not a success"

        # Frequent beats: without Redis the cancel arrives with a heartbeat answer.
        worker = Worker(self.pool, {"long": long}, wait_s=1, heartbeat_s=0.2)
        thread = run_in_thread(worker)
        try:
            self.assertTrue(started.wait(20), "the handler started")
            http("PUT", f"/runs/{run_id}/cancel", {"reason": "user requested cancellation"})
            run = await_run(run_id, lambda r: r["status"] == "CANCELLED", "the worker's TASK_CANCELLED completes the cancel")
        finally:
            worker.stop()
            thread.join(10)
        self.assertFalse(run["cancellation"]["forced"])
        self.assertEqual("CANCELLED", tasks_of(run)["long"]["state"])
        self.assertEqual(1, len(reasons))
        self.assertIn("cancel", reasons[0].lower())

    @unittest.skipUnless(REDIS, "needs DEEPLINE_REDIS (the node's Redis)")
    def test_with_redis_a_cancel_reaches_the_handler_at_once_not_with_the_next_heartbeat(self):
        run_id = self.submit({"task_id": "long", "type": "long"})
        started, seen = threading.Event(), []

        def long(task):
            started.set()
            task.cancelled.wait(30)
            seen.append((time.monotonic(), task.cancel_reason))

        worker = Worker(self.pool, {"long": long}, wait_s=1)  # default heartbeats: a third of the lease (20 s by default)
        thread = run_in_thread(worker)
        try:
            self.assertTrue(started.wait(20), "the handler started")
            time.sleep(0.5)  # the watcher has subscribed by now
            cancelled_at = time.monotonic()
            http("PUT", f"/runs/{run_id}/cancel", {"reason": "user requested cancellation"})
            run = await_run(run_id, lambda r: r["status"] == "CANCELLED", "acknowledged")
        finally:
            worker.stop()
            thread.join(10)
        self.assertFalse(run["cancellation"]["forced"])
        (seen_at, reason), = seen
        self.assertIn("Redis", reason)
        self.assertLess(seen_at - cancelled_at, 3.0)


class _StubNode(ThreadingHTTPServer):
    """Hands out one task with a short lease, then nothing; answers heartbeats with ``heartbeat_status``."""

    daemon_threads = True

    def __init__(self, heartbeat_timeout_s):
        super().__init__(("127.0.0.1", 0), _StubHandler)
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.heartbeat_status = 503
        self.handed_out = False
        self.events = []
        self.lock = threading.Lock()


class _StubHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        node = self.server
        with node.lock:
            if self.path.endswith("/tasks/poll"):
                tasks = [] if node.handed_out else [{
                    "run_id": "r1", "task_id": "t1", "type": "slow", "pool": "stub", "attempt": 1, "params": None, "inputs": {},
                    "resources": [], "lease_expires_at": "2030-01-01T00:00:00Z", "heartbeat_timeout_s": node.heartbeat_timeout_s}]
                node.handed_out = True
                return self.answer(200, {"tasks": tasks})
            node.events.append(body)
            if body["event"] == "TASK_HEARTBEAT":
                return self.answer(node.heartbeat_status, {"detail": "the node is having a bad day"})
            return self.answer(200, {"state": "SUCCEEDED", "run_status": "SUCCEEDED", "attempt": body.get("attempt")})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status < 400 else "application/problem+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class WorkerAgainstStub(unittest.TestCase):
    def setUp(self):
        # configure() is process-wide: point it at the stub for this test only.
        self.saved = dict(deepline_worker._settings)
        self.addCleanup(lambda: (deepline_worker._settings.clear(), deepline_worker._settings.update(self.saved)))

    def start_stub(self, heartbeat_timeout_s):
        node = _StubNode(heartbeat_timeout_s)
        threading.Thread(target=node.serve_forever, daemon=True).start()
        self.addCleanup(node.server_close)
        self.addCleanup(node.shutdown)
        deepline_worker.configure(url="http://127.0.0.1:%d" % node.server_address[1])
        return node

    def test_a_lease_that_cannot_be_renewed_cancels_the_handler_before_it_runs_out_and_success_is_not_reported(self):
        node = self.start_stub(heartbeat_timeout_s=6)
        outcome = {}

        def slow(task):
            began = time.monotonic()
            outcome["cancelled"] = task.cancelled.wait(10)
            outcome["after_s"] = time.monotonic() - began
            return "done"

        worker = Worker("stub", {"slow": slow}, wait_s=0, worker_id="stub-worker")
        with self.assertLogs("deepline_worker", logging.WARNING) as logs:
            self.assertEqual(1, worker.run_once())
        self.assertTrue(outcome["cancelled"])
        # Lease 6 s, margin a sixth of it: cancelled at 5 s, before the node could hand the task to another worker.
        self.assertGreater(outcome["after_s"], 4.0)
        self.assertLess(outcome["after_s"], 6.0)
        self.assertEqual({"TASK_HEARTBEAT"}, {e["event"] for e in node.events}, "no outcome reported once the lease is lost")
        self.assertTrue(all(e["attempt"] == 1 and e["worker_id"] == "stub-worker" for e in node.events))
        self.assertTrue(any("lease was lost" in line for line in logs.output), logs.output)

    def test_an_unreachable_node_is_retried_with_backoff_and_never_crashes_the_loop(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
        deepline_worker.configure(url=f"http://127.0.0.1:{port}")
        worker = Worker("stub", {}, wait_s=0)
        with self.assertLogs("deepline_worker", logging.WARNING) as logs:
            thread = run_in_thread(worker)
            time.sleep(1.8)  # a failed poll, a 1 s back-off, a second failed poll
            worker.stop()
            thread.join(5)
        self.assertFalse(thread.is_alive())
        polls = [line for line in logs.output if "poll of pool stub failed" in line]
        self.assertGreaterEqual(len(polls), 2, logs.output)
        self.assertIn("next poll in 1 s", polls[0])
        self.assertIn("next poll in 2 s", polls[1])


if __name__ == "__main__":
    unittest.main()
