"""Counters for sends, answers, alerts and errors reach an OpenTelemetry SDK when one is configured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot.telemetry import configure_telemetry
from tests.conftest import Harness
from tests.e2e.test_nps_flow import ask, invoke, post_invoke, submit
from tests.support.activities import message


@pytest.fixture(scope="session")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process, as in production
    return exporter


@pytest.fixture(scope="session")
def reader() -> Iterator[InMemoryMetricReader]:
    in_memory = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[in_memory]))  # once per process, as in production
    yield in_memory


def totals(reader: InMemoryMetricReader) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, tuple(sorted((k, str(v)) for k, v in point.attributes.items())))
                    found[key] = point.value
    return found


async def test_send_answer_and_alert_are_counted(harness: Harness, reader: InMemoryMetricReader) -> None:
    before = totals(reader)
    instance = await ask(harness)
    await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "2", "Broken")))
    await post_invoke(harness, invoke(harness, "nps.submit", submit(instance, "2", "Broken")))  # a retry: not twice
    after = totals(reader)

    def delta(name: str, **attributes: str) -> float:
        key = (name, tuple(sorted(attributes.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("nurture.sends", kind="nps", outcome="sent") == 1
    assert delta("nurture.answers", kind="nps", category="detractor") == 1
    assert delta("nurture.alerts", kind="detractor") == 1


def test_azure_monitor_stays_off_without_a_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    assert configure_telemetry() is False


async def test_failed_requests_are_counted(harness: Harness, reader: InMemoryMetricReader) -> None:
    before = totals(reader).get(("nurture.errors", (("route", "/api/messages"),)), 0)
    harness.connector.fail_next(503)
    response = await harness.post(message("help", service_url=harness.connector.service_url))
    assert response.status == 502
    assert totals(reader)[("nurture.errors", (("route", "/api/messages"),))] - before == 1


async def test_each_request_is_a_span_without_text_or_tokens(harness: Harness, spans: InMemorySpanExporter) -> None:
    spans.clear()
    activity = message("zebra-secret words", service_url=harness.connector.service_url, activity_id="span-1")
    assert (await harness.post(activity)).status == 200
    [span] = [s for s in spans.get_finished_spans() if s.name == "POST /api/messages"]
    attributes = dict(span.attributes or {})
    assert attributes["nurture.status"] == 200 and attributes["nurture.activity_id"] == "span-1"
    assert attributes["nurture.activity_type"] == "message"
    assert "zebra" not in repr(attributes) and "Bearer" not in repr(attributes)
