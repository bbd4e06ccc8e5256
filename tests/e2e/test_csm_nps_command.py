"""The CSM `nps` command in chat: report card with gauge and trend (with fallbacks), refusal for everyone else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.conftest import Harness
from tests.e2e.test_nps_flow import texts
from tests.support.activities import CSM, TENANT, USER, message
from tests.support.connector import card_of
from tests.support.seed import seed_answers


def _find(card: dict[str, Any], element_type: str) -> dict[str, Any] | None:
    stack: list[Any] = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == element_type:
                return node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


async def test_csm_gets_report_with_gauge_trend_and_comments(harness: Harness) -> None:
    october, november = datetime(2026, 10, 14, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC)
    await seed_answers(harness.database_url, TENANT, [10] * 6 + [8] * 2 + [2] * 4, october, user_prefix="oct")
    await seed_answers(
        harness.database_url,
        TENANT,
        [10] * 8 + [7] * 2 + [3] * 2 + [None] * 4,
        november,
        user_prefix="nov",
        comments=[None] * 10 + ["[click me](https://evil.example) it is slow", "Missing export"] + [None] * 4,
    )
    response = await harness.post(message("nps", service_url=harness.connector.service_url, aad_object_id=CSM))
    assert response.status == 200
    card = card_of(harness.connector.sent()[-1])
    shown = texts(card)
    assert "NPS — all accounts" in shown and "NPS +33 (95 % interval" in shown  # 14 promoters, 6 detractors of 24
    gauge = _find(card, "Chart.Gauge")
    assert gauge is not None and gauge["value"] == 33.3 and gauge["fallback"]["type"] == "FactSet"
    line = _find(card, "Chart.Line")
    assert line is not None and line["fallback"]["type"] == "TextBlock"
    assert [v["x"] for v in line["data"][0]["values"]] == ["2026-10", "2026-11"]
    run = _find(card, "TextRun")
    assert run is not None and run["text"] in ("Missing export", "[click me](https://evil.example) it is slow")
    facts = {f["title"]: f["value"] for e in card["body"] if e["type"] == "FactSet" for f in e["facts"]}
    assert facts["Response rate"] == "86%"  # 24 answers of 28 asks
    assert facts["Answers"] == "24"


async def test_csm_report_for_one_tenant_with_too_few_answers(harness: Harness) -> None:
    await seed_answers(harness.database_url, TENANT, [10, 9, 3], datetime(2026, 11, 10, tzinfo=UTC))
    text = f"nps {TENANT}"
    assert (
        await harness.post(message(text, service_url=harness.connector.service_url, aad_object_id=CSM))
    ).status == 200
    card = card_of(harness.connector.sent()[-1])
    assert "Too few answers for a score: 3 of at least 10" in texts(card)
    assert _find(card, "Chart.Gauge") is None


async def test_non_csm_is_politely_refused(harness: Harness) -> None:
    await seed_answers(
        harness.database_url, TENANT, [3] * 12, datetime(2026, 11, 10, tzinfo=UTC), comments=["secret complaint"] * 12
    )
    assert (
        await harness.post(message("nps", service_url=harness.connector.service_url, aad_object_id=USER))
    ).status == 200
    card = card_of(harness.connector.sent()[-1])
    assert "for customer success managers" in texts(card)
    assert "secret complaint" not in str(card) and "NPS" not in texts(card)
