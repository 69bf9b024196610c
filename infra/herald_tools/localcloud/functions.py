"""The Lambda stand-in: each function runs in a long-lived worker subprocess.

A :class:`FunctionWorker` is one execution environment: a Python process with the
function's environment variables (resolved from the template), the endpoint of the local
cloud, test credentials, and ``PYTHONPATH`` set as Lambda sets it (CodeUri first, then the
layers' ContentUri directories); with ``herald local --built``, on the Lambda Python with nothing
but the built artefacts and the runtime shim on its path (:mod:`.runtime`).  The handler module
is imported once (cold start); each invocation sends the event as JSON over a dedicated pipe and
reads the result back over another, so whatever the function prints cannot corrupt the exchange.
The function's stdout and stderr are forwarded line by line, prefixed with the function's name.

A worker that crashes, or exceeds the function's Timeout (it is killed, as Lambda does),
fails that invocation; the next invocation starts a new process (a new cold start).

A :class:`WorkerPool` is a function's concurrency: up to :func:`concurrency_for` environments
(the template's ``ReservedConcurrentExecutions``, else a default), started as invocations need
them, each serving one invocation at a time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .cwlogs import CloudWatchShipper
from .provision import FunctionSpec
from .template import REGION

log = logging.getLogger(__name__)

INIT_TIMEOUT_SECONDS = 10.0  # Lambda's limit on the init phase
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "VIRTUAL_ENV", "SYSTEMROOT")
_TOOLS_ROOT = Path(__file__).resolve().parents[2]  # the directory holding herald_tools
WORKER_MODULE = "herald_tools.localcloud.worker"


@dataclass
class InvocationResult:
    ok: bool
    request_id: str
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    stack_trace: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    cold_start: bool = False


class LogSink:
    """Where the functions' output goes: a text stream (stderr by default) or a file, and, with
    ``cloudwatch``, the function's log group in the local cloud's CloudWatch Logs as well."""

    def __init__(
        self, target: IO[str] | str | Path | None = None, *, cloudwatch: CloudWatchShipper | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._owned = False
        self.cloudwatch = cloudwatch
        if target is None:
            self._stream: IO[str] = sys.stderr
        elif isinstance(target, str | Path):
            self._stream = open(target, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._owned = True
        else:
            self._stream = target

    def write_line(self, prefix: str, line: str, *, log_stream: tuple[str, str] | None = None) -> None:
        """``[prefix] line`` to the text log; with ``log_stream`` (group, stream), to CloudWatch too."""
        with self._lock:
            try:
                self._stream.write(f"[{prefix}] {line.rstrip()}\n")
                self._stream.flush()
            except ValueError:  # closed
                pass
        if self.cloudwatch is not None and log_stream is not None:
            self.cloudwatch.put(*log_stream, line.rstrip("\r\n"))

    def close(self) -> None:
        if self.cloudwatch is not None:
            self.cloudwatch.close()
        if self._owned:
            self._stream.close()


def lambda_environment(
    spec: FunctionSpec,
    endpoint_url: str | None,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a function's worker process, as Lambda would set it plus the endpoint.

    Built (``spec.built``), nothing of the venv: no ``VIRTUAL_ENV``, and the runtime shim's directory
    on the path instead of the checkout's ``herald_tools``."""
    inherited = [k for k in _INHERITED if spec.built is None or k != "VIRTUAL_ENV"]
    env = {k: os.environ[k] for k in inherited if k in os.environ}
    paths = [str(spec.code_dir)]
    for layer in spec.layers:
        paths.append(str(layer / "python") if (layer / "python").is_dir() else str(layer))
    # Only for the worker module itself.
    paths.append(str(spec.built.shim_dir) if spec.built is not None else str(_TOOLS_ROOT))
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(paths),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
            "AWS_EXECUTION_ENV": "AWS_Lambda_" + spec.runtime,
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            "HERALD_LOCAL_FUNCTION_ARN": spec.arn,
            "POWERTOOLS_TRACE_DISABLED": "1",
        }
    )
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    env.update(spec.environment)
    if extra_env:
        env.update(extra_env)
    return env


class FunctionWorker:
    """One execution environment of one function; invocations are served one at a time."""

    def __init__(
        self,
        spec: FunctionSpec,
        endpoint_url: str | None,
        *,
        logs: LogSink | None = None,
        python: str = sys.executable,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.endpoint_url = endpoint_url
        self.logs = logs or LogSink()
        self.python = python
        self.extra_env = dict(extra_env or {})
        self._lock = threading.Lock()  # one invocation at a time
        self._proc: subprocess.Popen[str] | None = None
        self._requests: IO[str] | None = None
        self._responses: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._state_lock = threading.Lock()
        self.cold_starts = 0
        self.invocations = 0
        self.running = 0  # invocations in progress (0 or 1)
        self._log_thread: threading.Thread | None = None
        self._closed = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    # -- process --------------------------------------------------------------------------------
    def _spawn(self) -> InvocationResult | None:
        """Start the process and wait for its cold start; an InvocationResult if init failed."""
        self._kill()
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        start = self.spec.built.command() if self.spec.built else [self.python, "-m", WORKER_MODULE]
        cmd = [
            *start,
            str(self.spec.code_dir),
            self.spec.handler,
            "--in-fd",
            str(req_r),
            "--out-fd",
            str(res_w),
        ]
        try:
            env = lambda_environment(self.spec, self.endpoint_url, self.extra_env)
            proc = subprocess.Popen(
                cmd,
                pass_fds=(req_r, res_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(self.spec.code_dir) if self.spec.code_dir.is_dir() else None,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        finally:
            os.close(req_r)
            os.close(res_w)
        self._proc = proc
        self._requests = os.fdopen(req_w, "w", encoding="utf-8")
        responses: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._responses = responses
        self.cold_starts += 1
        threading.Thread(
            target=self._read_responses,
            args=(os.fdopen(res_r, "r", encoding="utf-8"), responses),
            name=f"{self.name}-responses",
            daemon=True,
        ).start()
        # The worker's own log stream, as Lambda gives each execution environment one.
        log_stream = (env["AWS_LAMBDA_LOG_GROUP_NAME"], env["AWS_LAMBDA_LOG_STREAM_NAME"])
        self._log_thread = threading.Thread(
            target=self._forward_logs, args=(proc, log_stream), name=f"{self.name}-logs", daemon=True
        )
        self._log_thread.start()
        ready = self._next_response(max(INIT_TIMEOUT_SECONDS, float(self.spec.timeout)))
        if ready is None or ready.get("timeout"):
            self._kill()
            return InvocationResult(
                ok=False,
                request_id="",
                error_type="Runtime.ExitError",
                error_message=f"the worker of {self.name} exited or hung during init",
            )
        if not ready.get("ready"):
            self._kill()
            return InvocationResult(
                ok=False,
                request_id="",
                error_type=ready.get("errorType"),
                error_message=ready.get("errorMessage"),
                stack_trace=ready.get("stackTrace") or [],
            )
        log.debug("%s: cold start (pid %s)", self.name, proc.pid)
        return None

    def _read_responses(self, stream: IO[str], responses: queue.Queue[dict[str, Any] | None]) -> None:
        with stream:
            for line in stream:
                if line.strip():
                    try:
                        responses.put(json.loads(line))
                    except json.JSONDecodeError:
                        log.warning("%s: unreadable response line %r", self.name, line[:200])
        responses.put(None)  # EOF: the process is gone

    def _forward_logs(self, proc: subprocess.Popen[str], log_stream: tuple[str, str]) -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                self.logs.write_line(self.name, line, log_stream=log_stream)

    def _next_response(self, timeout: float) -> dict[str, Any] | None:
        """The next response; ``None`` when the process ended, ``{"timeout": True}`` on timeout."""
        try:
            return self._responses.get(timeout=timeout)
        except queue.Empty:
            return {"timeout": True}

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if self._requests is not None:
            with contextlib.suppress(OSError):
                self._requests.close()
            self._requests = None
        if proc is not None and proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def start(self) -> None:
        """Start the process now (a cold start ahead of the first event); raises if init fails."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                failure = self._spawn()
                if failure is not None:
                    raise RuntimeError(f"{self.name}: {failure.error_type}: {failure.error_message}")

    def begin_stop(self) -> None:
        """EOF on the request pipe, without waiting: the worker's loop ends. Stopping many workers
        first tells them all, then waits for each (``stop``), so they wind down in parallel."""
        self._closed = True
        requests = self._requests
        if requests is not None:
            with contextlib.suppress(OSError, ValueError):
                requests.close()

    def stop(self, timeout: float = 5.0) -> None:
        """End the process: EOF on its request pipe, then a kill if it does not exit in time.

        Does not wait for an invocation in progress; that invocation fails.
        """
        self.begin_stop()
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        thread = self._log_thread
        if thread is not None:
            thread.join(timeout=2)  # the last lines the process wrote reach the log

    # -- invoke -----------------------------------------------------------------------------------
    def invoke(self, event: Any, timeout: float | None = None) -> InvocationResult:
        """Run the handler with ``event``; never raises for the function's own failures."""
        with self._lock:
            with self._state_lock:
                self.running += 1
            try:
                return self._invoke(event, float(timeout or self.spec.timeout))
            finally:
                with self._state_lock:
                    self.running -= 1
                    self.invocations += 1

    def _invoke(self, event: Any, timeout: float) -> InvocationResult:
        if self._closed:
            raise RuntimeError(f"{self.name}: the worker is stopped")
        request_id = str(uuid.uuid4())
        cold = False
        if self._proc is None or self._proc.poll() is not None:
            failure = self._spawn()
            if failure is not None:
                failure.request_id = request_id
                failure.cold_start = True
                return failure
            cold = True
        started = time.monotonic()
        deadline_ms = int(time.time() * 1000 + timeout * 1000)
        request = {"id": request_id, "request_id": request_id, "deadline_ms": deadline_ms, "event": event}
        try:
            assert self._requests is not None
            self._requests.write(json.dumps(request) + "\n")
            self._requests.flush()
        except (OSError, ValueError) as exc:
            self._kill()
            return InvocationResult(
                ok=False,
                request_id=request_id,
                error_type="Runtime.ExitError",
                error_message=f"cannot reach the worker: {exc}",
                cold_start=cold,
            )
        response = self._next_response(timeout)
        duration = (time.monotonic() - started) * 1000
        if response is None or response.get("timeout"):
            timed_out = response is not None
            code = None
            if not timed_out and self._proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = self._proc.wait(timeout=2)
            self._kill()
            if not timed_out:
                return InvocationResult(
                    ok=False,
                    request_id=request_id,
                    error_type="Runtime.ExitError",
                    error_message=(
                        f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
                    ),
                    duration_ms=duration,
                    cold_start=cold,
                )
            self.logs.write_line(self.name, f"Task timed out after {timeout:.2f} seconds")
            return InvocationResult(
                ok=False,
                request_id=request_id,
                error_type="Sandbox.Timedout",
                error_message=f"Task timed out after {timeout:.2f} seconds",
                duration_ms=duration,
                cold_start=cold,
            )
        if response.get("ok"):
            return InvocationResult(
                ok=True,
                request_id=request_id,
                result=response.get("result"),
                duration_ms=duration,
                cold_start=cold,
            )
        self.logs.write_line(
            self.name,
            json.dumps(
                {
                    "errorType": response.get("errorType"),
                    "errorMessage": response.get("errorMessage"),
                    "requestId": request_id,
                }
            ),
        )
        return InvocationResult(
            ok=False,
            request_id=request_id,
            error_type=response.get("errorType"),
            error_message=response.get("errorMessage"),
            stack_trace=response.get("stackTrace") or [],
            duration_ms=duration,
            cold_start=cold,
        )

    def __repr__(self) -> str:
        return f"FunctionWorker({self.name!r}, pid={self.pid})"


#: Execution environments per function when the template reserves none (``--concurrency`` changes it).
DEFAULT_CONCURRENCY = 4
#: The most environments a function gets from its ``ReservedConcurrentExecutions`` on one machine:
#: each is a Python process of its own (about 90 MB resident for Herald's API function).
MAX_RESERVED_CONCURRENCY = 8
THROTTLED = "TooManyRequestsException"
#: Seconds an environment stays up with nothing to run before it is stopped (Lambda, too, shuts
#: idle environments down; locally it is soon, so a burst's environments do not outlive it).
DEFAULT_IDLE_SECONDS = 30.0
#: Seconds an invocation that finds every environment busy waits for one to be free before another
#: starts (about what a cold start takes here: short invocations share the environments there are).
DEFAULT_SCALE_OUT_SECONDS = 1.0


def concurrency_for(spec: FunctionSpec, override: int | None = None) -> int:
    """How many execution environments ``spec`` gets locally.

    The template's ``ReservedConcurrentExecutions`` when it sets one (0 throttles every
    invocation, as on AWS), at most :data:`MAX_RESERVED_CONCURRENCY`; otherwise
    :data:`DEFAULT_CONCURRENCY`. ``override`` (``herald local --concurrency N``) takes the place of
    both numbers: N environments per function, fewer where the template reserves fewer.
    """
    if override is not None and override < 1:
        raise ValueError(f"the concurrency must be at least 1, not {override}")
    reserved = spec.reserved_concurrency
    if reserved is not None and reserved < 0:
        raise ValueError(f"{spec.logical_id}: ReservedConcurrentExecutions is {reserved}, below 0")
    default = override if override is not None else DEFAULT_CONCURRENCY
    cap = override if override is not None else MAX_RESERVED_CONCURRENCY
    return default if reserved is None else min(reserved, cap)


class WorkerPool:
    """Up to ``max_size`` execution environments of one function, for concurrent invocations.

    An invocation takes an idle environment (the most recently used, so the others can stay
    cold), or starts a new one (a cold start) while fewer than ``max_size`` exist, or waits for
    one to be free: Lambda scaling out under concurrent invocations, up to the function's
    concurrency. Environments start only when an invocation needs one, and one at a time: on
    one machine, cold starts in parallel share its cores, so each takes as long as all of them
    (a burst of requests would wait seconds for the first and could push them past the 10 s
    init limit), while in turn the first is ready soon and serves while the next starts.
    ``wait`` bounds the wait for a free one; past it the invocation is throttled
    (``TooManyRequestsException``, nothing runs), as Lambda throttles at a function's reserved
    concurrency. ``max_size`` 0 throttles every invocation (``ReservedConcurrentExecutions: 0``).
    An environment idle for ``idle_seconds`` is stopped (None: kept until the pool stops), as
    Lambda shuts down idle environments; the next invocation that needs one starts a new one.
    An invocation that finds every environment busy waits up to ``scale_out_seconds`` for one to
    be free before it starts another (Lambda starts one at once; here each costs a cold start of
    about that long and 80 to 200 MB, so a stream of short invocations shares fewer of them).

    It has the interface of a :class:`FunctionWorker` the event sources use (``name``, ``spec``,
    ``invoke``).
    """

    def __init__(
        self,
        spec: FunctionSpec,
        endpoint_url: str | None,
        *,
        logs: LogSink | None = None,
        extra_env: Mapping[str, str] | None = None,
        max_size: int = DEFAULT_CONCURRENCY,
        idle_seconds: float | None = DEFAULT_IDLE_SECONDS,
        scale_out_seconds: float = DEFAULT_SCALE_OUT_SECONDS,
    ) -> None:
        if max_size < 0:
            raise ValueError(f"max_size must be at least 0, not {max_size}")
        self.spec = spec
        self.endpoint_url = endpoint_url
        self.logs = logs
        self.extra_env = dict(extra_env or {})
        self.max_size = max_size
        self.idle_seconds = idle_seconds
        self.scale_out_seconds = scale_out_seconds
        self.workers: list[FunctionWorker] = []
        self._idle: list[FunctionWorker] = []  # the most recently used last
        self._idle_since: dict[int, float] = {}  # id(worker) -> when it became idle
        lock = threading.RLock()
        self._available = threading.Condition(lock)  # an environment became free, or the pool closed
        self._reaper_wake = threading.Condition(lock)  # the pool closed
        self._closed = False
        self._starting = False  # a cold start is in progress
        self._reaper: threading.Thread | None = None
        self.throttles = 0
        self.waiting = 0  # invocations waiting for an environment
        self.peak = 0  # the most invocations that ran at once
        self.stopped_idle = 0  # environments stopped for being idle
        self._retired = {"cold_starts": 0, "invocations": 0}  # of the environments stopped so

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def running(self) -> int:
        """Invocations in progress."""
        return sum(w.running for w in list(self.workers))

    @property
    def cold_starts(self) -> int:
        return self._retired["cold_starts"] + sum(w.cold_starts for w in list(self.workers))

    @property
    def invocations(self) -> int:
        return self._retired["invocations"] + sum(w.invocations for w in list(self.workers))

    @property
    def pids(self) -> list[int]:
        """The process ids of the environments that are up."""
        return [pid for pid in (w.pid for w in list(self.workers)) if pid is not None]

    def _acquire(self, wait: float | None) -> tuple[FunctionWorker | None, bool]:
        """(an environment, whether it is new and must start), or (None, False): throttled."""
        arrived = time.monotonic()
        deadline = None if wait is None else arrived + wait
        scale_out_at = arrived + self.scale_out_seconds  # if none is free by then, start another
        fresh = False
        with self._available:
            while True:
                if self._closed:
                    raise RuntimeError(f"{self.spec.name}: the worker pool is stopped")
                if self._idle:
                    worker = self._idle.pop()
                    self._idle_since.pop(id(worker), None)
                    break
                now = time.monotonic()
                may_start = len(self.workers) < self.max_size and not self._starting
                if may_start and (not self.workers or now >= scale_out_at):
                    worker = FunctionWorker(
                        self.spec, self.endpoint_url, logs=self.logs, extra_env=self.extra_env
                    )
                    self.workers.append(worker)
                    self._starting = fresh = True
                    if self._reaper is None and self.idle_seconds is not None:
                        self._reaper = threading.Thread(
                            target=self._reap, name=f"idle-{self.spec.name}", daemon=True
                        )
                        self._reaper.start()
                    break
                remaining = None if deadline is None else deadline - now
                if self.max_size == 0 or (remaining is not None and remaining <= 0):
                    self.throttles += 1
                    return None, False
                if may_start:  # wake up to start one, unless one is free before
                    remaining = min(scale_out_at - now, remaining if remaining is not None else math.inf)
                self.waiting += 1
                try:
                    self._available.wait(remaining)
                finally:
                    self.waiting -= 1
            self.peak = max(self.peak, len(self.workers) - len(self._idle))
            return worker, fresh

    def _cold_start(self, worker: FunctionWorker, *, raise_failure: bool = False) -> None:
        """Start a new environment; the next may start once it is up (or its init failed)."""
        try:
            worker.start()
        except RuntimeError:
            if raise_failure:
                raise
            # Not raised: the invocation starts it again and reports the failure (Lambda, too,
            # runs a failed init again with the first invocation).
        finally:
            with self._available:
                self._starting = False
                self._available.notify_all()

    def _release(self, worker: FunctionWorker) -> None:
        with self._available:
            self._idle.append(worker)
            self._idle_since[id(worker)] = time.monotonic()
            self._available.notify()

    def _reap(self) -> None:
        """Stop the environments idle for ``idle_seconds``, until the pool is closed."""
        assert self.idle_seconds is not None
        limit = self.idle_seconds
        while True:
            with self._available:
                if self._closed:
                    return
                now = time.monotonic()
                # The least recently used come first in the idle list.
                expired = [w for w in self._idle if now - self._idle_since[id(w)] >= limit]
                for worker in expired:
                    self._idle.remove(worker)
                    del self._idle_since[id(worker)]
                    self.workers.remove(worker)
                    self._retired["cold_starts"] += worker.cold_starts
                    self._retired["invocations"] += worker.invocations
                    self.stopped_idle += 1
                if not expired:
                    # Until the oldest idle one expires (woken at once when the pool closes).
                    oldest = min((self._idle_since[id(w)] for w in self._idle), default=now)
                    self._reaper_wake.wait(max(0.05, oldest + limit - now))
                    continue
            for worker in expired:
                with contextlib.suppress(Exception):
                    worker.stop()

    def invoke(
        self, event: Any, timeout: float | None = None, *, wait: float | None = None
    ) -> InvocationResult:
        """Run the handler with ``event`` in a free environment; ``wait``: at most this many seconds
        for one (None: as long as it takes), then a throttled result."""
        worker, fresh = self._acquire(wait)
        if worker is None:
            return InvocationResult(
                ok=False,
                request_id=str(uuid.uuid4()),
                error_type=THROTTLED,
                error_message=(
                    f"Rate Exceeded: all {self.max_size} execution environment(s) of {self.name} "
                    f"stayed busy for {wait or 0:.1f} s"
                ),
            )
        try:
            if fresh:
                self._cold_start(worker)
            return worker.invoke(event, timeout)
        finally:
            self._release(worker)

    def start(self) -> None:
        """Cold-start one environment now (ahead of the first event); raises if its init fails."""
        worker, fresh = self._acquire(None)
        if worker is None:
            return  # no environment allowed (ReservedConcurrentExecutions: 0)
        try:
            if fresh:
                self._cold_start(worker, raise_failure=True)
            else:
                worker.start()
        finally:
            self._release(worker)

    def begin_stop(self) -> None:
        """Close the pool (new invocations raise, no environment starts) and tell every environment
        to end, without waiting (see ``FunctionWorker.begin_stop``)."""
        with self._available:
            self._closed = True
            self._available.notify_all()
            self._reaper_wake.notify_all()
            workers = list(self.workers)
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.begin_stop()

    def stop(self) -> None:
        """Stop every environment, all told first (``begin_stop``), then each waited for;
        invocations in progress fail, new ones raise."""
        self.begin_stop()
        for worker in list(self.workers):
            with contextlib.suppress(Exception):
                worker.stop()
        if self._reaper is not None:
            self._reaper.join(timeout=10)  # it may be stopping an idle environment

    def __repr__(self) -> str:
        return f"WorkerPool({self.name!r}, {len(self.workers)}/{self.max_size} environments)"
