"""deepline_worker against a real node and Redis: DEEPLINE_URL and DEEPLINE_REDIS name them
(tests/Deepline.Cancellation.Tests/PythonClientTests.cs starts both and runs this file)."""

import asyncio
import json
import os
import time
import unittest
import urllib.request
import uuid

import deepline_worker
from deepline_worker import emit_event, is_workflow_cancelled, run_task

URL = os.environ.get("DEEPLINE_URL")


def http(method, path, body=None):
    request = urllib.request.Request(URL + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def submit(run_id, *task_ids, retry=None):
    tasks = [{"task_id": t, "type": "python", "pool": "py"} for t in task_ids]
    if retry is not None:
        for t in tasks:
            t["retry"] = retry
    http("POST", "/runs", {"run_id": run_id, "tasks": tasks})


def await_run(run_id, condition, what, within=20.0):
    deadline = time.monotonic() + within
    while True:
        run = http("GET", f"/runs/{run_id}")
        if condition(run):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within} s: {what}; last: {run}")
        time.sleep(0.05)


def await_async(condition, what, within=20.0):
    async def wait():
        deadline = time.monotonic() + within
        while not await condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached within {within} s: {what}")
            await asyncio.sleep(0.05)
    return wait()


@unittest.skipUnless(URL and os.environ.get("DEEPLINE_REDIS"), "needs DEEPLINE_URL and DEEPLINE_REDIS (a running node and its Redis)")
class AgainstNode(unittest.TestCase):
    def run_id(self):
        return "py-" + uuid.uuid4().hex[:12]

    def test_the_seeds_guideline_example_works_as_written(self):
        # The seed document's "Development Guidelines" example, word for word but for the stand-in work.
        async def long_running_operation():
            await asyncio.sleep(0)

        async def execute_task(task_meta):
            run_id = task_meta["run_id"]

            # Check cancellation before expensive operations
            if await is_workflow_cancelled(run_id):
                await emit_event("TASK_CANCELLED", task_meta)
                return

            # Perform task work...
            await long_running_operation()

            # Check again after major operations
            if await is_workflow_cancelled(run_id):
                await emit_event("TASK_CANCELLED", task_meta)
                return

        run_id = self.run_id()
        submit(run_id, "t")
        task_meta = {"run_id": run_id, "task_id": "t", "worker_id": "py-worker-1"}

        async def scenario():
            await emit_event("TASK_STARTED", task_meta)
            self.assertFalse(await is_workflow_cancelled(run_id))
            http("PUT", f"/runs/{run_id}/cancel", {"reason": "user requested cancellation"})
            await await_async(lambda: is_workflow_cancelled(run_id), "the cancel mirrored to Redis")
            record = await deepline_worker.cancellation_record(run_id)
            self.assertEqual("user requested cancellation", record["reason"])
            await execute_task(task_meta)

        asyncio.run(scenario())
        run = await_run(run_id, lambda r: r["status"] == "CANCELLED", "the worker's TASK_CANCELLED completes the cancel")
        self.assertFalse(run["cancellation"]["forced"])

    def test_the_seeds_example_on_a_run_cancelled_before_its_task_was_claimed_does_not_raise(self):
        # The usual case: the run was cancelled while its task waited, so the task is CANCELLED already and the
        # example's TASK_CANCELLED is answered 409. The example must simply return.
        run_id = self.run_id()
        submit(run_id, "t")
        http("PUT", f"/runs/{run_id}/cancel", {"reason": "before any worker"})
        task_meta = {"run_id": run_id, "task_id": "t", "worker_id": "py-worker-5"}

        async def execute_task(meta):
            if await is_workflow_cancelled(meta["run_id"]):
                await emit_event("TASK_CANCELLED", meta)
                return "stopped"
            return "ran"

        async def scenario():
            await await_async(lambda: is_workflow_cancelled(run_id), "the cancel mirrored to Redis")
            return await execute_task(task_meta)

        self.assertEqual("stopped", asyncio.run(scenario()))
        self.assertEqual("CANCELLED", await_run(run_id, lambda r: r["status"] == "CANCELLED", "cancelled")["status"])

    def test_the_wrapper_returns_when_its_claim_is_refused_and_never_runs_the_work(self):
        # Another worker holds the task: this worker's claim is refused (409), and run_task says so without raising.
        run_id = self.run_id()
        submit(run_id, "t")
        ran = []

        async def work(meta):
            ran.append(meta["run_id"])

        async def scenario():
            await emit_event("TASK_STARTED", {"run_id": run_id, "task_id": "t", "worker_id": "py-holder"})
            return await run_task({"run_id": run_id, "task_id": "t", "worker_id": "py-latecomer"}, work)

        self.assertEqual("TASK_CANCELLED", asyncio.run(scenario()))
        self.assertEqual([], ran)
        http("PUT", f"/runs/{run_id}/cancel", {"reason": "clean up"})

    def test_the_wrapper_stops_running_work_at_once_when_the_run_is_cancelled(self):
        run_id = self.run_id()
        submit(run_id, "long")
        stopped = []

        async def work(meta):
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                stopped.append(meta["task_id"])
                raise

        async def scenario():
            job = asyncio.ensure_future(run_task({"run_id": run_id, "task_id": "long", "worker_id": "py-worker-2"}, work))
            await asyncio.to_thread(await_run, run_id, lambda r: r["tasks"][0]["state"] == "RUNNING", "claimed")
            http("PUT", f"/runs/{run_id}/cancel", {"reason": "stop"})
            return await asyncio.wait_for(job, 20)

        self.assertEqual("TASK_CANCELLED", asyncio.run(scenario()))
        self.assertEqual(["long"], stopped)
        await_run(run_id, lambda r: r["status"] == "CANCELLED" and not r["cancellation"]["forced"], "acknowledged, not forced")

    def test_the_wrapper_reports_success_and_failure_and_never_starts_a_cancelled_run(self):
        ok, bad, gone = self.run_id(), self.run_id(), self.run_id()
        submit(ok, "t")
        submit(bad, "t", retry={"max_attempts": 1})  # one attempt: its TASK_FAILED fails the run (the node retries otherwise)
        submit(gone, "t")
        http("PUT", f"/runs/{gone}/cancel", {"reason": "before any worker"})
        ran = []

        async def work(meta):
            ran.append(meta["run_id"])
            if meta["run_id"] == bad:
                raise ValueError("bad input")
            return {"rows": 3}

        async def scenario():
            await await_async(lambda: is_workflow_cancelled(gone), "the cancel mirrored to Redis")
            return [await run_task({"run_id": r, "task_id": "t"}, work) for r in (ok, bad, gone)]

        self.assertEqual(["TASK_SUCCEEDED", "TASK_FAILED", "TASK_CANCELLED"], asyncio.run(scenario()))
        self.assertEqual([ok, bad], ran)
        self.assertEqual({"rows": 3}, await_run(ok, lambda r: r["status"] == "SUCCEEDED", "succeeded")["tasks"][0]["result"])
        failed = await_run(bad, lambda r: r["status"] == "FAILED", "failed")["tasks"][0]
        self.assertIn("ValueError: bad input", failed["error"])
        self.assertEqual("ValueError", failed["error_type"])

    def test_a_late_event_on_a_finished_task_is_TaskOver(self):
        run_id = self.run_id()
        submit(run_id, "t")
        meta = {"run_id": run_id, "task_id": "t", "worker_id": "py-worker-3"}

        async def scenario():
            await emit_event("TASK_STARTED", meta)
            await emit_event("TASK_SUCCEEDED", meta, result={"ok": True})
            with self.assertRaises(deepline_worker.TaskOver):
                await emit_event("TASK_SUCCEEDED", meta)
            with self.assertRaises(ValueError):
                await emit_event("TASK_DONE", meta)

        asyncio.run(scenario())


if __name__ == "__main__":
    unittest.main()
