"""Keep every use of the tracing SDK in this one module.

Requests, Celery tasks, database queries and outgoing calls are traced with
the AWS X-Ray SDK. Views, tasks and services never import it: they reach it
through the functions here, so an OpenTelemetry exporter can replace the SDK
in this module alone (docs/tracing.md). With TRACING_ENABLED off the SDK is
never imported, so nothing is patched and nothing about tracing is logged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from celery import signals
from celery.app.task import Task
from django.apps import AppConfig
from django.conf import settings
from django.http import HttpRequest, HttpResponse

# Carries a trace from whoever queues a task to the worker, in the format
# X-Ray uses for HTTP: "Root=<trace id>;Parent=<subsegment id>;Sampled=1".
TRACE_HEADER = "X-Amzn-Trace-Id"
# Every AWS API call, and plain HTTP: requests and urllib both end in
# http.client.
PATCHED_LIBRARIES = ("botocore", "httplib")
# Load balancer health checks and static files would use up the sample.
UNTRACED_PATHS = ("/healthz", "/static/*")


class TracingConfig(AppConfig):
    """Start tracing with Django: in the web app, the worker and commands."""

    name = "photosite.tracing"
    label = "tracing"
    verbose_name = "Tracing"

    def ready(self) -> None:
        start()


def start() -> None:
    """Configure the recorder from settings and patch what it traces."""
    from aws_xray_sdk import global_sdk_config
    from aws_xray_sdk.core import patch, xray_recorder
    from aws_xray_sdk.ext.django.db import patch_db
    from aws_xray_sdk.ext.httplib import add_ignored

    global_sdk_config.set_sdk_enabled(True)
    xray_recorder.configure(
        service=settings.TRACING_SERVICE_NAME,
        daemon_address=settings.TRACING_DAEMON_ADDRESS,
        # Work outside any request or task, such as start-up queries and the
        # broker's own AWS calls, is simply not traced.
        context_missing="IGNORE_ERROR",
        sampler=make_sampler(),
        sampling_rules=sampling_rules(),
    )
    logging.getLogger("aws_xray_sdk.core.recorder").addFilter(OUTSIDE_SEGMENTS)
    patch(PATCHED_LIBRARIES)
    # A boto3 call is a subsegment already; its HTTP request would repeat it.
    add_ignored(subclass="botocore.awsrequest.AWSHTTPConnection")
    patch_db()
    carry_traces_into_thread_pools()
    connect_celery_signals()


def make_sampler() -> Any:
    """Return X-Ray's central sampler if asked for, else a local one."""
    if settings.TRACING_CENTRAL_SAMPLING:
        from aws_xray_sdk.core.sampling.sampler import DefaultSampler

        return DefaultSampler()
    from aws_xray_sdk.core.sampling.local.sampler import LocalSampler

    return LocalSampler()


def sampling_rules() -> dict[str, Any]:
    """Return the local sampling rules, in X-Ray's version 2 format."""
    untraced = [
        {
            "description": "Not worth a trace",
            "host": "*",
            "http_method": "*",
            "url_path": path,
            "fixed_target": 0,
            "rate": 0.0,
        }
        for path in UNTRACED_PATHS
    ]
    default = {
        "fixed_target": settings.TRACING_SAMPLES_PER_SECOND,
        "rate": settings.TRACING_SAMPLING_RATE,
    }
    return {"version": 2, "rules": untraced, "default": default}


class OutsideSegmentsFilter(logging.Filter):
    """Drop the SDK's warning that a patched call ran outside any segment."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No segment found")


OUTSIDE_SEGMENTS = OutsideSegmentsFilter()


def tracing_middleware(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Record each request as a segment that continues the caller's trace."""
    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.ext.django.middleware import XRayMiddleware
    from aws_xray_sdk.ext.util import http

    def record_path_only(request: HttpRequest) -> HttpResponse:
        # The SDK records the whole URL, and query strings can hold secrets,
        # such as the code and state Cognito sends back on sign-in.
        entity = xray_recorder.get_trace_entity()
        if entity is not None:
            entity.put_http_meta(http.URL, request.build_absolute_uri(request.path))
        return get_response(request)

    middleware: Callable[[HttpRequest], HttpResponse] = XRayMiddleware(record_path_only)
    return middleware


def current_trace_id() -> str:
    """Return the X-Ray trace id of the sampled work in progress, or ""."""
    entity = trace_entity()
    if entity is None or not entity.sampled:
        return ""
    return str(entity.trace_id)


def trace_entity() -> Any:
    """Return the segment or subsegment open on this thread, or None."""
    if not settings.TRACING_ENABLED:
        return None
    from aws_xray_sdk.core import xray_recorder

    # None outside a segment, silently: context_missing is IGNORE_ERROR.
    return xray_recorder.get_trace_entity()


def carry_traces_into_thread_pools() -> None:
    """Run work handed to a thread pool in the trace that handed it over."""
    # boto3 uploads, django-storages' among them, call S3 from s3transfer's
    # threads; without this, an upload's PutObject would be in no trace.
    submit: Callable[..., Future[Any]] = ThreadPoolExecutor.submit
    if hasattr(submit, "__wrapped__"):
        return

    @functools.wraps(submit)
    def submit_in_trace(
        executor: ThreadPoolExecutor,
        function: Callable[..., Any],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> Future[Any]:
        entity = trace_entity()
        if entity is None:
            return submit(executor, function, *args, **kwargs)
        return submit(executor, run_in_trace, entity, function, *args, **kwargs)

    ThreadPoolExecutor.submit = submit_in_trace  # type: ignore[method-assign,assignment]


def run_in_trace(
    entity: Any, function: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """Call the function on this pool thread as part of the entity's trace."""
    from aws_xray_sdk.core import xray_recorder

    xray_recorder.set_trace_entity(entity)
    try:
        return function(*args, **kwargs)
    finally:
        xray_recorder.clear_trace_entities()


def connect_celery_signals() -> None:
    """Carry traces through the broker and record each task as a segment."""
    signals.before_task_publish.connect(
        add_trace_header, weak=False, dispatch_uid="tracing.add_trace_header"
    )
    signals.task_prerun.connect(
        begin_task_segment, weak=False, dispatch_uid="tracing.begin_task_segment"
    )
    signals.task_postrun.connect(
        end_task_segment, weak=False, dispatch_uid="tracing.end_task_segment"
    )


def add_trace_header(sender: str, headers: dict[str, Any], **kwargs: Any) -> None:
    """Name the queueing subsegment as the parent of the task's segment."""
    if trace_entity() is None:
        # Queued outside any trace (S3's notifications): the task starts one.
        return
    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.ext.util import inject_trace_header

    # Ended at once: a publish that fails never sends after_task_publish, and
    # one open subsegment would keep the whole segment from being sent.
    with xray_recorder.in_subsegment(f"queue {sender}", namespace="remote") as queued:
        queued.put_annotation("celery_task", sender)
        inject_trace_header(headers, queued)


def begin_task_segment(task: Task[Any, Any], **kwargs: Any) -> None:
    """Begin the task's segment in the trace its message carries."""
    if not settings.TRACING_ENABLED:
        return
    from aws_xray_sdk.core import xray_recorder

    if task.request.is_eager and trace_entity() is not None:
        # Run in place (CELERY_TASK_ALWAYS_EAGER): part of the caller's trace.
        entity = xray_recorder.begin_subsegment(task.name)
    else:
        entity = xray_recorder.begin_segment(
            f"{settings.TRACING_SERVICE_NAME}-worker", **trace_context(task)
        )
    entity.put_annotation("celery_task", task.name)


def trace_context(task: Task[Any, Any]) -> dict[str, Any]:
    """Return the trace id, parent and sampling decision for a task."""
    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.core.models.trace_header import TraceHeader

    header = TraceHeader.from_header_str(task.request.get(TRACE_HEADER))
    sampled = header.sampled
    if sampled not in (0, 1):
        # With a path, the rules for untraced paths, which match any request
        # that has none, pass the task by.
        request = {"method": "TASK", "path": task.name}
        sampled = xray_recorder.sampler.should_trace(request) or 0
    return {"traceid": header.root, "parent_id": header.parent, "sampling": sampled}


def end_task_segment(task: Task[Any, Any], state: str | None, **kwargs: Any) -> None:
    """End what begin_task_segment began, marking a failed task as a fault."""
    entity = trace_entity()
    if entity is None:
        return
    from aws_xray_sdk.core import xray_recorder

    if state == "FAILURE":
        entity.add_fault_flag()
    if getattr(entity, "type", "") == "subsegment":
        xray_recorder.end_subsegment()
    else:
        xray_recorder.end_segment()
