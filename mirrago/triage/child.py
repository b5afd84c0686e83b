"""The checks' own process: `python -m mirrago.triage.child` reads one request a line (JSON: the
row's inputs, result file and backdrop) and answers each with what the checks found (JSON).

The background checker (`worker.TriageWorker`) starts one and keeps it: the checks' CPU and
image libraries stay out of the runner's process, and the process runs in the idle scheduling
class, so the runner, a local sandbox and the pages always come first. A plain program of its
own rather than `multiprocessing`, whose "spawn" re-runs the parent's main script in the child
(in the app, that is the Streamlit page script).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import IO, Any

from mirrago.triage.result import Triage


class CheckingProcess:
    """The parent's handle on one checks process, started on first use and again after it
    stopped (the request it was on is then answered with an error). Thread-safe."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def check(self, request: dict[str, Any]) -> Triage:
        """What the checks found for `request`; raises RuntimeError when the process failed."""
        with self._lock:
            process = self._running()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(json.dumps(request) + "\n")
                process.stdin.flush()
                line = process.stdout.readline()
            except (OSError, ValueError):
                line = ""
            if not line:
                self._end()
                raise RuntimeError("the checking process stopped")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the checks raised {answer['error']}")
        return Triage(
            score=answer["score"],
            flags=tuple(answer["flags"]),
            values=answer["values"],
            reason=answer["reason"],
            version=answer["version"],
        )

    def stop(self) -> None:
        """End the process (without waiting for a check in progress to hand it back: its
        answer, if any, is read by the thread that asked, or lost)."""
        self._end()

    def _running(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mirrago.triage.child"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
        return self._process

    def _end(self) -> None:  # under the lock, or from stop() without it
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()  # the child ends at the end of its input
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    from mirrago.triage.worker import check_inputs

    try:
        found = check_inputs(
            request["target"],
            request["garment"],
            request.get("result_path"),
            request.get("background"),
            request.get("base_url"),
        )
    except Exception as error:  # noqa: BLE001 - the parent records it as "not checked"
        import logging

        logging.getLogger("mirrago.triage").exception("the quality checks failed")
        return {"error": type(error).__name__}
    return {
        "score": found.score,
        "flags": list(found.flags),
        "values": found.values,
        "reason": found.reason,
        "version": found.version,
    }


def serve(requests: IO[str], answers: IO[str]) -> None:
    """Answer each request line until the input ends."""
    for line in requests:
        if line.strip():
            answers.write(json.dumps(_answer(json.loads(line))) + "\n")
            answers.flush()


def lower_priority() -> None:
    """This process gets the CPU only when nothing else wants it (Linux's idle scheduling
    class; elsewhere the lowest niceness)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError):  # not Linux
        pass
    try:
        os.nice(19)
    except (AttributeError, OSError):  # not on this platform: run at the usual priority
        pass


if __name__ == "__main__":
    lower_priority()
    # The answers get stdout's pipe of their own; anything else written to stdout (a library's
    # print) goes to stderr, where it cannot break an answer.
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin, answers)
