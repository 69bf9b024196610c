"""``LocalCloud``: the whole system on one machine, from template.yaml, without AWS or Docker."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, TypeVar

import boto3
from botocore.config import Config

from herald_tools.ports import PortInUseError, port_in_use
from herald_tools.stack import LOCAL_CREDENTIALS, local_env

from .apigateway import ApiGateway
from .cwlogs import CloudWatchShipper
from .event_sources import DynamoDBStreamPoller, EventSourcePoller, SqsPoller
from .functions import (
    DEFAULT_IDLE_SECONDS,
    DEFAULT_SCALE_OUT_SECONDS,
    InvocationResult,
    LogSink,
    WorkerPool,
    concurrency_for,
)
from .provision import Resources, provision, template_has_api_events
from .pushservice import LocalPushService
from .runtime import BuiltRuntime, write_shim
from .server import DEFAULT_HOST, DEFAULT_PORT, MotoServer
from .sitehost import SITE_BUCKET, SiteHost, template_has_site
from .template import REGION, Template
from .translate import TranslateStandIn

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"
DEFAULT_RETRY_VISIBILITY_TIMEOUT = 1
#: How long an API request waits for a free execution environment of its function before it is
#: throttled (API Gateway answers a throttled Lambda proxy integration 500 "Internal server error").
#: AWS throttles at once when the reserved concurrency is used up, but the local pools are smaller
#: than what AWS would run (see ``concurrency_for``), so a short queue stands in for the scaling.
API_QUEUE_SECONDS = 10.0
# Every function's environment, locally: loopback push endpoints are accepted, and the published
# pages carry a browser-like subscription for the join button (there is no browser push service).
LOCAL_ENV = {"ALLOW_LOOPBACK_PUSH": "true", "HERALD_DEMO_SUBSCRIPTIONS": "true"}
_T = TypeVar("_T")


def _listening(host: str, port: int | None, what: str, make: Callable[[], _T]) -> _T:
    """``make()``, a server that binds ``port``; a taken port raises PortInUseError naming ``what``."""
    try:
        return make()
    except PortInUseError:
        raise
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUseError(host, port or 0, what) from None
        raise


class LocalCloud:
    """moto's server plus the template's resources plus Lambda's part (workers and pollers).

    ::

        with LocalCloud("template.yaml").start(port=0) as cloud:
            s3 = cloud.client("s3")
            s3.put_object(Bucket=cloud.resources.uploads_bucket, Key="posts/x/a.md", Body=b"...")
            cloud.wait_until_idle(timeout=30)

    Knobs: ``parameters`` (template parameter overrides), ``retry_visibility_timeout``
    (seconds before a failed SQS message is visible again; ``None`` keeps the queue's own
    VisibilityTimeout, as on AWS), ``logs`` (stream or file path for the functions' output),
    ``extra_env`` (added to every function's environment, after ``ALLOW_LOOPBACK_PUSH=true``),
    ``functions`` (logical ids of the functions to run; default all), ``prewarm`` (cold-start
    every worker during start), ``project_root`` (the directory CodeUri and ContentUri are
    relative to; default: the template's directory), ``concurrency`` (execution environments
    per function instead of the default 4, or the template's ``ReservedConcurrentExecutions`` up
    to 8; see :func:`.functions.concurrency_for`), ``api_queue_seconds`` (how long an API request
    waits for a free environment before it is throttled), ``built`` (``herald local --built``: the
    host twin of the built artefacts, ``.aws-sam/build-host``; its built template is the template,
    and the functions run on its Lambda Python with nothing else on their path; see
    :mod:`herald_tools.built` and :mod:`.runtime`).

    Each function has a :class:`.functions.WorkerPool`, shared by its API routes and its event
    sources, as a Lambda function's concurrency is; environments start when invocations need them.

    When the template has ``Type: Api`` function events, ``start`` also starts the local API
    Gateway (:mod:`.apigateway`) on ``api_port``; its URL is :attr:`api_url`.

    Entering the context does not start it (``with cloud: cloud.start(port=...)``, or
    ``with LocalCloud(...).start(port=0) as cloud``); leaving it stops it.
    """

    def __init__(
        self,
        template: str | Path | Template = DEFAULT_TEMPLATE,
        *,
        parameters: Mapping[str, Any] | None = None,
        host: str = DEFAULT_HOST,
        retry_visibility_timeout: int | None = DEFAULT_RETRY_VISIBILITY_TIMEOUT,
        logs: IO[str] | str | Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        functions: Iterable[str] | None = None,
        prewarm: bool = False,
        sqs_wait_seconds: int = 1,
        project_root: str | Path | None = None,
        concurrency: int | None = None,
        api_queue_seconds: float = API_QUEUE_SECONDS,
        idle_seconds: float | None = DEFAULT_IDLE_SECONDS,
        scale_out_seconds: float = DEFAULT_SCALE_OUT_SECONDS,
        built: str | Path | None = None,
    ) -> None:
        self.built: Any = None  # herald_tools.built.Twin
        if built is not None:
            from herald_tools.built import load_twin

            if project_root is not None or template != DEFAULT_TEMPLATE:
                raise ValueError("built runs the twin's own template; give no template or project_root")
            self.built = load_twin(built)  # TwinError, naming the make target, if missing or stale
            template = self.built.template
        self.template = template if isinstance(template, Template) else Template.load(template)
        if project_root is not None:
            self.template = Template(
                path=Path(project_root).resolve() / Path(self.template.path or "template.yaml").name,
                body=self.template.body,
            )
        self.parameters = dict(parameters or {})
        self.host = host
        self.retry_visibility_timeout = retry_visibility_timeout
        self._log_target = logs
        self.extra_env = {**LOCAL_ENV, **(extra_env or {})}
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self.concurrency = concurrency
        self.api_queue_seconds = api_queue_seconds
        self.idle_seconds = idle_seconds
        self.scale_out_seconds = scale_out_seconds
        self.only_functions = set(functions) if functions is not None else None
        self.prewarm = prewarm
        self.sqs_wait_seconds = sqs_wait_seconds
        self.region = REGION
        self.server: MotoServer | None = None
        self._resources: Resources | None = None
        self.pools: dict[str, WorkerPool] = {}  # logical id -> the function's environments
        self.pollers: list[EventSourcePoller] = []
        self.api: ApiGateway | None = None
        self.site: SiteHost | None = None
        self.push_service: LocalPushService | None = None
        self.vapid_public_key: str | None = None
        self._logs: LogSink | None = None
        self._activity = threading.Condition()
        self._activity_count = 0
        self._status: ThreadingHTTPServer | None = None
        self._shim_dir: Path | None = None
        self._session = boto3.Session(**LOCAL_CREDENTIALS, region_name=REGION)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(
        self, port: int | None = DEFAULT_PORT, api_port: int | None = None, site_port: int | None = None
    ) -> LocalCloud:
        """Start the server (``port=0``: any free port), create the resources, start Lambda's part.

        If the template has ``Type: Api`` events, the local API Gateway listens on ``api_port``
        (``0`` or ``None``: any free port).
        """
        if self.server is not None:
            raise RuntimeError("the local cloud is already running")
        has_api, has_site = template_has_api_events(self.template), template_has_site(self.template)
        # Every fixed port is checked before anything starts: a taken one fails at once, by name.
        for wanted, what, needed in (
            (port, "moto's endpoint", True),
            (api_port, "the API", has_api),
            (site_port, "the public site", has_site),
        ):
            if needed and wanted and port_in_use(self.host, wanted):
                raise PortInUseError(self.host, wanted, what)
        self.server = MotoServer(self.host, port or 0)
        try:
            self.server.start()
            self.server.reset()
            if has_api:
                # Bound before provisioning: the API's URL goes into Outputs and environments.
                self.api = _listening(
                    self.host, api_port, "the API", lambda: ApiGateway(self.host, api_port or 0)
                )
            if has_site:
                # Bound before provisioning too: the distribution's URL (SiteUrl, and PublicSiteUrl left
                # empty) resolves to it.
                self.site = _listening(
                    self.host, site_port, "the public site", lambda: SiteHost(self.host, site_port or 0)
                )
            self._resources = provision(
                self.template,
                client_factory=self.client,
                parameters=self.parameters,
                api_url=self.api.url if self.api else None,
                site_url=self.site.url if self.site else None,
            )
            if self.built is not None:
                self._use_built_runtime()
            self._logs = LogSink(self._log_target, cloudwatch=CloudWatchShipper(lambda: self.client("logs")))
            self._start_push_service()
            self._start_functions()
            self._start_api()
            if self.site is not None:
                self.site.configure(self._resources.ref(SITE_BUCKET), self.client("s3"))
                self.site.start()
            self._start_status()
        except BaseException:
            self.stop()
            raise
        return self

    def _use_built_runtime(self) -> None:
        """Every function on the twin's Lambda Python, with only its artefacts and the shim on its path."""
        assert self._resources is not None and self.built is not None
        self._shim_dir = write_shim()
        runtime = BuiltRuntime(python=self.built.python, shim_dir=self._shim_dir)
        for lid, spec in self._resources.functions.items():
            if spec.runtime != self.built.runtime:
                raise RuntimeError(
                    f"{lid} runs on {spec.runtime}, but the twin was made for {self.built.runtime}"
                )
            spec.built = runtime

    def _start_functions(self) -> None:
        assert self._resources is not None and self._logs is not None
        for lid, spec in self._resources.functions.items():
            if self.only_functions is not None and lid not in self.only_functions:
                continue
            worker = WorkerPool(
                spec,
                self.endpoint_url,
                logs=self._logs,
                extra_env=self.extra_env,
                max_size=concurrency_for(spec, self.concurrency),
                idle_seconds=self.idle_seconds,
                scale_out_seconds=self.scale_out_seconds,
            )
            if worker.max_size == 0:
                log.warning("%s: ReservedConcurrentExecutions is 0; every invocation is throttled", lid)
            self.pools[lid] = worker
            for source in spec.events:
                if not source.enabled:
                    continue
                poller: EventSourcePoller
                if source.type == "SQS":
                    poller = SqsPoller(
                        source,
                        worker,
                        self.client("sqs"),
                        retry_visibility_timeout=self.retry_visibility_timeout,
                        wait_seconds=self.sqs_wait_seconds,
                    )
                elif source.type == "DynamoDB":
                    poller = DynamoDBStreamPoller(
                        source, worker, self.client("dynamodbstreams"), sqs_client=self.client("sqs")
                    )
                    poller.initialise()  # LATEST means "from now", not "from the first poll"
                else:
                    log.debug("%s: %s events are not served locally (yet)", lid, source.type)
                    continue
                poller.on_batch = self._note_activity
                self.pollers.append(poller)
        if self.prewarm:
            for worker in self.pools.values():
                try:
                    worker.start()
                except RuntimeError as exc:
                    log.warning("%s", exc)
        for poller in self.pollers:
            poller.start()

    def _start_push_service(self) -> None:
        """A Web Push service on loopback, and a VAPID key in SSM where the push sender reads it."""
        from herald.fanout.channels.vapid import generate_vapid_key, private_key_pem, public_key_b64

        names = {
            str(spec.environment["VAPID_KEY_PARAMETER"])
            for spec in self.resources.functions.values()
            if spec.environment.get("VAPID_KEY_PARAMETER")
        }
        if not names:
            return
        self.push_service = LocalPushService(self.host).start()
        key = generate_vapid_key()
        self.vapid_public_key = public_key_b64(key.public_key())
        ssm = self.client("ssm")
        for name in sorted(names):
            ssm.put_parameter(
                Name=name,
                Value=private_key_pem(key),
                Type="SecureString",
                Overwrite=True,
                Description="VAPID private key of the local cloud",
            )

    def _start_api(self) -> None:
        assert self._resources is not None
        if self.api is None:
            return
        apis = self._resources.apis.values()
        for api in apis:
            # A function not running (``functions``): its routes answer 404.
            api.routes = [r for r in api.routes if r.function in self.pools]
        self.api.configure(apis, self._invoke_for_api)
        self.api.start()

    def _invoke_for_api(self, function: str, event: dict[str, Any]) -> InvocationResult:
        return self.pools[function].invoke(event, wait=self.api_queue_seconds)

    def stop(self) -> None:
        """Stop the API Gateway, the pollers, the workers and the server."""
        status, self._status = self._status, None
        if status is not None:
            status.shutdown()
            status.server_close()
        site, self.site = self.site, None
        if site is not None:
            site.stop()
        push, self.push_service = self.push_service, None
        if push is not None:
            push.stop()
        api, self.api = self.api, None
        if api is not None:
            api.stop()
        pollers, self.pollers = self.pollers, []
        for poller in pollers:
            poller._stop.set()
        for poller in pollers:
            poller.stop()
        pools, self.pools = self.pools, {}
        for pool in pools.values():  # every environment told first: they end in parallel
            with contextlib.suppress(Exception):
                pool.begin_stop()
        for pool in pools.values():
            with contextlib.suppress(Exception):
                pool.stop()
        if self._logs is not None:  # before the server: the last lines still reach CloudWatch Logs
            self._logs.close()
            self._logs = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        shim, self._shim_dir = self._shim_dir, None
        if shim is not None:
            shutil.rmtree(shim, ignore_errors=True)

    def __enter__(self) -> LocalCloud:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- access ---------------------------------------------------------------------------------
    @property
    def workers(self) -> dict[str, WorkerPool]:
        """The functions' pools by logical id (``invoke``, ``spec``, ``cold_starts``, ``pids``)."""
        return self.pools

    def pool(self, function: str) -> WorkerPool:
        """The execution environments of a function, by logical id."""
        try:
            return self.pools[function]
        except KeyError:
            running = ", ".join(sorted(self.pools))
            raise KeyError(f"{function!r} is not a running function (running: {running})") from None

    @property
    def endpoint_url(self) -> str:
        if self.server is None:
            raise RuntimeError("the local cloud is not running")
        return self.server.endpoint_url

    @property
    def translate(self) -> TranslateStandIn:
        """The stand-in of Amazon Translate on :attr:`endpoint_url` (``throttle(n)``, ``calls``)."""
        if self.server is None:
            raise RuntimeError("the local cloud is not running")
        return self.server.translate

    @property
    def site_url(self) -> str | None:
        """Where the site bucket is served, as CloudFront would (None: the template has no site)."""
        return self.site.url if self.site is not None else None

    @property
    def api_url(self) -> str | None:
        """Where the local API Gateway serves the template's APIs (None: the template has none)."""
        return self.api.url if self.api is not None else None

    @property
    def resources(self) -> Resources:
        if self._resources is None:
            raise RuntimeError("the local cloud is not running")
        return self._resources

    @property
    def outputs(self) -> dict[str, Any]:
        return self.resources.outputs

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` against the local cloud."""
        kwargs.setdefault("config", Config(retries={"max_attempts": 2, "mode": "standard"}))
        return self._session.client(service, endpoint_url=self.endpoint_url, region_name=REGION, **kwargs)

    def environment(self) -> dict[str, str]:
        """Environment variables that point AWS SDKs and CLIs at the local cloud."""
        return {**local_env(self.endpoint_url, REGION), "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"}

    def ready_info(self) -> dict[str, Any]:
        """What ``herald local --json`` prints: endpoints, region, credentials, the resource names.

        ``env`` holds the variables to export so that the AWS CLI and SDKs reach the local cloud
        without ``--endpoint-url`` or any AWS configuration.
        """
        r = self.resources
        info: dict[str, Any] = {"endpoint_url": self.endpoint_url, "api_url": self.api_url, "region": REGION}
        info["credentials"] = dict(LOCAL_CREDENTIALS)
        info["env"] = local_env(self.endpoint_url, REGION)
        info["site_url"] = self.site_url
        for key, getter in (
            ("uploads_bucket", lambda: r.uploads_bucket),
            ("content_table", lambda: r.content_table),
            ("ingest_queue_url", lambda: r.ingest_queue_url),
            ("ingest_dlq_url", lambda: r.ingest_dlq_url),
        ):
            try:
                info[key] = getter()
            except KeyError:
                info[key] = None
        # Logical id -> function name; the logs are in /aws/lambda/<name> (``aws logs tail``).
        info["functions"] = {lid: spec.name for lid, spec in r.functions.items()}
        info["push_service_url"] = self.push_service.origin if self.push_service else None
        info["vapid_public_key"] = self.vapid_public_key
        info["outputs"] = dict(r.outputs)
        info["status_url"] = self.status_url
        # herald local --built: the twin the functions run from, and its Python.
        info["built"] = (
            {"dir": str(self.built.root), "python": self.built.python, "runtime": self.built.runtime}
            if self.built is not None
            else None
        )
        return info

    # -- synchronisation --------------------------------------------------------------------------
    def busy(self) -> list[str]:
        """What is still going on: running invocations, queued or in-flight messages, unread records."""
        reasons = [f"{p.name}: {p.running} invocation(s) running" for p in self.pools.values() if p.running]
        if self.api is not None and self.api.in_flight:
            reasons.append(f"API Gateway: {self.api.in_flight} request(s) in progress")
        for poller in self.pollers:
            reason = poller.pending()
            if reason:
                reasons.append(reason)
        return reasons

    @property
    def status_url(self) -> str | None:
        """``GET`` it for ``{"busy": [...]}``: :meth:`busy` from outside the process (``[]``: idle)."""
        if self._status is None:
            return None
        host, port = self._status.server_address[:2]
        return f"http://{host}:{port}/"

    def _start_status(self) -> None:
        cloud = self

        class Status(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"busy": cloud.busy()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._status = ThreadingHTTPServer((self.host, 0), Status)
        self._status.daemon_threads = True
        threading.Thread(target=self._status.serve_forever, name="local-cloud-status", daemon=True).start()

    def _note_activity(self) -> None:
        with self._activity:
            self._activity_count += 1
            self._activity.notify_all()

    def wait_for_activity(self, timeout: float) -> bool:
        """Block until an event source settles a batch (True) or ``timeout`` seconds pass (False)."""
        with self._activity:
            start = self._activity_count
            return self._activity.wait_for(lambda: self._activity_count != start, timeout=timeout)

    def wait_until_idle(self, timeout: float = 30.0, poll_interval: float = 0.05) -> None:
        """Return once nothing is queued, in flight or running, observed twice in a row.

        Raises TimeoutError naming what is still busy when ``timeout`` seconds pass.
        """
        deadline = time.monotonic() + timeout
        quiet = 0
        reasons: list[str] = []
        while True:
            reasons = self.busy()
            quiet = 0 if reasons else quiet + 1
            if quiet >= 2:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError("the local cloud is still busy: " + "; ".join(reasons or ["?"]))
            time.sleep(poll_interval)
