"""Counters for sends, answers, alerts and errors, and a span per request, through the OpenTelemetry API.

Without an SDK the API is a no-op, so the counters cost nothing. With APPLICATIONINSIGHTS_CONNECTION_STRING set and the
`azure` extra installed (pip install 'nurture[azure]'), traces and metrics go to Azure Monitor / Application Insights.
"""

from __future__ import annotations

import logging
import os

from opentelemetry import metrics, trace

log = logging.getLogger(__name__)
_meter = metrics.get_meter("nurture")
tracer = trace.get_tracer("nurture")

sends = _meter.create_counter("nurture.sends", description="Proactive cards sent, by kind and outcome")
answers = _meter.create_counter("nurture.answers", description="Survey answers stored, by kind and category")
alerts = _meter.create_counter("nurture.alerts", description="CSM alert causes raised, by kind")
errors = _meter.create_counter("nurture.errors", description="Requests that failed on our side (5xx), by route")


def configure_telemetry() -> bool:
    """Send telemetry to Azure Monitor when configured; returns whether it was switched on."""
    connection = os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "")
    if not connection:
        return False
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor
    except ImportError:
        log.warning("APPLICATIONINSIGHTS_CONNECTION_STRING is set but the azure extra is not installed")
        return False
    configure_azure_monitor(connection_string=connection, logger_name="nurture")
    log.info("telemetry to Azure Monitor is on")
    return True
