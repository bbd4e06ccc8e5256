"""`nurture nps` and `nurture survey send` as an operator runs them, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.engagement.nps import summarize
from tests.support.activities import TENANT
from tests.support.cli import nurture
from tests.support.connector import FakeConnector, card_of
from tests.support.database import row_counts
from tests.support.seed import seed_answers, seed_reachable_user

OTHER_TENANT = "22222222-2222-2222-2222-222222222222"


async def test_nps_json_matches_the_statistics(database_url: str) -> None:
    october, november = datetime(2026, 10, 5, 12, tzinfo=UTC), datetime(2026, 11, 9, 12, tzinfo=UTC)
    await seed_answers(
        database_url,
        TENANT,
        [10] * 7 + [8] * 3 + [1] * 2,
        october,
        user_prefix="a",
        comments=[None] * 10 + ["Hard to set up", None],
    )
    await seed_answers(database_url, TENANT, [9] * 3 + [2] * 9 + [None] * 3, november, user_prefix="b")
    await seed_answers(database_url, OTHER_TENANT, [10] * 4, november, user_prefix="c")

    code, out, err = await nurture(database_url, "nps", "--tenant", TENANT, "--by", "month", "--json")
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    expected = summarize([10] * 7 + [8] * 3 + [1] * 2 + [9] * 3 + [2] * 9)
    overall = report["overall"]
    assert overall["answers"] == 24 and overall["asks"] == 27
    assert overall["nps"] == expected.score and overall["interval_95"] == [
        expected.interval.low,
        expected.interval.high,
    ]
    assert overall["histogram"] == list(expected.histogram)
    assert overall["response_rate"] == 24 / 27
    october_row, november_row = report["periods"]
    assert (october_row["period"], november_row["period"]) == ("2026-10", "2026-11")
    assert october_row["nps"] == 100 * (7 - 2) / 12 and november_row["nps"] == 100 * (3 - 9) / 12
    assert november_row["change"]["significant"] is True and november_row["change"]["p_value"] < 0.05
    assert report["detractor_comments"][0]["comment"] == "Hard to set up"

    code, out, _ = await nurture(database_url, "nps", "--tenant", OTHER_TENANT, "--json")
    other = json.loads(out)["overall"]
    assert other["answers"] == 4 and other["nps"] is None and other["verdict"] == "too few answers"


async def test_nps_human_output(database_url: str) -> None:
    await seed_answers(database_url, TENANT, [10] * 12, datetime(2026, 11, 9, tzinfo=UTC))
    code, out, err = await nurture(database_url, "nps", "--by", "week")
    assert code == 0, err
    assert "NPS — all tenants" in out and "+100" in out and "2026-W46" in out


async def test_nps_rejects_unknown_grouping(database_url: str) -> None:
    code, _, err = await nurture(database_url, "nps", "--by", "fortnight")
    assert code == 2 and "week, month or quarter" in err


async def test_survey_send_delivers_and_then_respects_the_interval(database_url: str) -> None:
    connector = await FakeConnector().start()
    try:
        now = datetime.now(UTC)
        await seed_reachable_user(database_url, TENANT, "u-send", connector.service_url, now - timedelta(days=1))
        code, out, err = await nurture(
            database_url, "survey", "send", "--user", "u-send", "--force", "--json", NURTURE_DEV_MODE="1"
        )
        assert code == 0, err
        [result] = json.loads(out)["results"]
        assert result["queued"] is True and result["reason"] == "forced by an operator"
        assert connector.sent() == []  # queued, not sent: the delivery workers send
        code, _, err = await nurture(database_url, "deliver", "--once", NURTURE_DEV_MODE="1")
        assert code == 0, err
        card = card_of(connector.sent()[-1])
        assert "Wie wahrscheinlich" in json.dumps(card, ensure_ascii=False) and card["refresh"]["action"]["data"] == {
            "instance": result["instance"]
        }

        code, out, _ = await nurture(
            database_url, "survey", "send", "--user", "u-send", "--dry-run", "--json", NURTURE_DEV_MODE="1"
        )
        [again] = json.loads(out)["results"]
        assert again["ask"] is False and again["reason"].startswith("asked today")
        assert len(connector.sent()) == 1
    finally:
        await connector.close()


async def test_survey_send_needs_a_target_and_deliver_an_identity(database_url: str) -> None:
    code, _, err = await nurture(database_url, "survey", "send")
    assert code == 2 and "--user" in err
    code, _, err = await nurture(database_url, "deliver", "--once")
    assert code == 2 and "MicrosoftAppId" in err
    assert (await row_counts(database_url))["survey_instances"] == 0
