"""Cards for customer success managers: the churn-risk alert (Claim, Snooze, Log outreach, Resolve), an account's
health, the at-risk and renewals lists, and the daily digest.

The alert card refreshes itself (Action.Execute `alert.refresh`) for every CSM who may see the account, so a claim
or a note shows up for all of them with who did it. Nurture stores no names: the card says "you" to the person who
acted and "a colleague (…c5a1)" — the end of their directory id — to everyone else.
Account names, reasons, comments and notes are text from outside: they go into TextRun elements (no markdown).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from microsoft_teams.cards import (
    ActionSet,
    AdaptiveCard,
    CardElement,
    ExecuteAction,
    Fact,
    FactSet,
    GaugeChart,
    GaugeChartLegend,
    LineChart,
    LineChartData,
    LineChartValue,
    RefreshDefinition,
    RichTextBlock,
    TextBlock,
    TextInput,
    TextRun,
)

from bot.engagement.phrases import Phrase
from cards import CARD_VERSION
from cards.i18n import Strings
from cards.verbs import Verb

NOTE_MAX_LENGTH = 500
MAX_REFRESH_USERS = 60  # Teams refreshes a card automatically for at most 60 people


def who(actor: str | None, viewer: str | None, t: Strings) -> str:
    """ "you", or a colleague named by the last four characters of their directory id."""
    if actor is None:
        return t("alert.who_nurture")
    if viewer is not None and actor.lower() == viewer.lower():
        return t("alert.who_you")
    return t("alert.who_colleague", tail=actor[-4:])


@dataclass(frozen=True)
class AlertNote:
    at: str  # yyyy-mm-dd hh:mm UTC
    actor: str | None
    action: str
    note: str | None = None


@dataclass(frozen=True)
class AlertCardView:
    alert_id: int
    kind: str  # at_risk | detractor | renewal
    account: str  # the tenant's display name, else its id
    locale: str | None
    viewer: str | None  # AAD id of the person the card is drawn for (None: a channel)
    status: str  # open | claimed | snoozed | resolved
    reasons: list[Phrase | str] = field(default_factory=list)  # worded in the viewer's language
    score: float | None = None  # health score
    arrow: str = ""
    detractor_score: int | None = None
    comment: str | None = None
    comment_hidden: bool = False  # there is a comment, shown when the card refreshes for a CSM
    claimed_by: str | None = None
    snoozed_until: str | None = None
    resolved_by: str | None = None
    history: list[AlertNote] = field(default_factory=list)
    refresh_users: list[str] = field(default_factory=list)  # CSMs' AAD ids
    escalated: bool = False
    error: str | None = None  # a card-string key


def _text(text: str, **style: Any) -> RichTextBlock:
    return RichTextBlock(inlines=[TextRun(text=text, **style)])


def _dump(card: AdaptiveCard) -> dict[str, Any]:
    return card.model_dump(mode="json", by_alias=True, exclude_none=True)


def _title(view: AlertCardView, t: Strings) -> str:
    if view.kind == "at_risk":
        score = "–" if view.score is None else f"{view.score:.0f}"
        return t("alert.title.at_risk", account=view.account, score=score, arrow=view.arrow).rstrip()
    if view.kind == "detractor":
        return t("alert.title.detractor", account=view.account, score=view.detractor_score)
    return t("alert.title.renewal", account=view.account)


def build_alert_card(view: AlertCardView) -> dict[str, Any]:
    t = Strings(view.locale)
    title = _title(view, t)
    body: list[CardElement] = [_text(title, size="Medium", weight="Bolder")]
    if view.escalated:
        body.append(TextBlock(text=t("alert.escalated"), color="Warning", wrap=True, spacing="None"))
    if view.error:
        body.append(TextBlock(text=t(view.error), color="Attention", weight="Bolder", wrap=True))
    for reason in view.reasons[:5]:
        body.append(_text(f"• {t.phrase(reason)}"))
    if view.comment:
        body.append(TextBlock(text=t("alert.comment"), weight="Bolder", wrap=True, spacing="Medium"))
        body.append(_text(view.comment[:500], italic=True))
    elif view.comment_hidden:
        body.append(TextBlock(text=t("alert.comment_on_refresh"), is_subtle=True, wrap=True, spacing="Medium"))
    body.append(TextBlock(text=_state_line(view, t), is_subtle=True, wrap=True, spacing="Medium"))
    for entry in view.history[-3:]:
        line = t(f"alert.log.{entry.action}", who=who(entry.actor, view.viewer, t), at=entry.at)
        body.append(_text(line + (f": {entry.note}" if entry.note else ""), size="Small"))
    if view.status != "resolved":
        body.append(TextInput(id="note", label=t("alert.note_label"), is_multiline=True, max_length=NOTE_MAX_LENGTH))
        data = {"alert": view.alert_id}
        actions = []
        if view.status != "claimed":
            actions.append(ExecuteAction(title=t("alert.claim"), verb=Verb.ALERT_CLAIM, data=data, style="positive"))
        actions += [
            ExecuteAction(title=t("alert.note"), verb=Verb.ALERT_NOTE, data=data, associated_inputs="auto"),
            ExecuteAction(title=t("alert.snooze"), verb=Verb.ALERT_SNOOZE, data=data, associated_inputs="none"),
            ExecuteAction(title=t("alert.resolve"), verb=Verb.ALERT_RESOLVE, data=data, associated_inputs="none"),
        ]
        body.append(ActionSet(actions=actions))
    refresh = RefreshDefinition(
        action=ExecuteAction(title="Refresh", verb=Verb.ALERT_REFRESH, data={"alert": view.alert_id}),
        user_ids=[f"8:orgid:{u}" for u in view.refresh_users[:MAX_REFRESH_USERS]],
    )
    card = AdaptiveCard(version=CARD_VERSION, fallback_text=title, refresh=refresh, body=body)
    return _dump(card)


def _state_line(view: AlertCardView, t: Strings) -> str:
    if view.status == "claimed":
        return t("alert.state.claimed", who=who(view.claimed_by, view.viewer, t))
    if view.status == "snoozed":
        return t("alert.state.snoozed", until=view.snoozed_until or "")
    if view.status == "resolved":
        return t("alert.state.resolved", who=who(view.resolved_by, view.viewer, t))
    return t("alert.state.open")


# -- an account's health -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentLine:
    name: str  # usage_trend, activation …
    contribution: float
    reason: Phrase | str


@dataclass(frozen=True)
class AccountView:
    locale: str | None
    account: str
    score: float
    arrow: str
    at_risk: bool
    components: list[ComponentLine]
    left_out: list[Phrase | str]
    active_users: list[tuple[str, int]]  # (yyyy-mm-dd, active people) for the chart
    nps: float | None
    nps_interval: tuple[float, float] | None
    nps_answers: int
    renewal: str | None = None


def build_account_card(view: AccountView) -> dict[str, Any]:
    t = Strings(view.locale)
    headline = t("account.headline", score=f"{view.score:.0f}", arrow=view.arrow)
    title = view.account
    body: list[CardElement] = [
        _text(title, size="Large", weight="Bolder"),
        TextBlock(
            text=headline + (" · " + t("account.at_risk") if view.at_risk else ""),
            size="Medium",
            weight="Bolder",
            color="Attention" if view.at_risk else "Good",
            wrap=True,
        ),
        FactSet(
            facts=[
                Fact(title=t(f"health.{c.name}"), value=f"{c.contribution:.0f} · {t.phrase(c.reason)}")
                for c in view.components
            ]
        ),
    ]
    for missing in view.left_out:
        body.append(_text(t("account.left_out", what=t.phrase(missing)), size="Small", color="Default"))
    if len(view.active_users) >= 2:
        series = " · ".join(f"{d[5:]}: {n}" for d, n in view.active_users[-7:])
        body.append(TextBlock(text=t("account.active_users"), weight="Bolder", wrap=True, spacing="Medium"))
        body.append(
            LineChart(
                title=t("account.active_users"),
                data=[
                    LineChartData(
                        legend=t("account.active_users"),
                        values=[LineChartValue(x=d, y=n) for d, n in view.active_users],
                    )
                ],
                fallback=TextBlock(text=series, wrap=True),
            )
        )
    if view.nps is not None and view.nps_interval is not None:
        low, high = view.nps_interval
        line = t("report.score", score=f"{view.nps:+.0f}", low=f"{low:+.0f}", high=f"{high:+.0f}")
        body.append(
            GaugeChart(
                title="NPS",
                min=-100,
                max=100,
                value=round(view.nps, 1),
                value_format="Fraction",
                show_needle=False,
                sub_label=t("report.interval", low=f"{low:+.0f}", high=f"{high:+.0f}"),
                segments=[
                    GaugeChartLegend(size=100, legend=t("report.band_low"), color="attention"),
                    GaugeChartLegend(size=30, legend=t("report.band_mid"), color="warning"),
                    GaugeChartLegend(size=70, legend=t("report.band_high"), color="good"),
                ],
                fallback=FactSet(facts=[Fact(title="NPS", value=line)]),
            )
        )
    else:
        body.append(TextBlock(text=t("account.nps_too_few", n=view.nps_answers), wrap=True, is_subtle=True))
    if view.renewal:
        body.append(TextBlock(text=t("account.renewal", date=view.renewal), wrap=True))
    return _dump(AdaptiveCard(version=CARD_VERSION, fallback_text=f"{title}: {headline}", body=body))


# -- lists: at risk, renewals, digest ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountLine:
    account: str
    detail: str  # "health 42 ↓ — usage −60 % …" / "renews 2027-01-19 (in 55 days)"


def build_account_list_card(
    locale: str | None, title_key: str, lines: list[AccountLine], empty_key: str
) -> dict[str, Any]:
    t = Strings(locale)
    title = t(title_key)
    body: list[CardElement] = [TextBlock(text=title, size="Medium", weight="Bolder", wrap=True)]
    if not lines:
        body.append(TextBlock(text=t(empty_key), wrap=True, is_subtle=True))
    for line in lines[:20]:
        body.append(
            RichTextBlock(inlines=[TextRun(text=line.account, weight="Bolder"), TextRun(text=f" — {line.detail}")])
        )
    if len(lines) > 20:
        body.append(TextBlock(text=t("list.more", n=len(lines) - 20), is_subtle=True, wrap=True))
    return _dump(AdaptiveCard(version=CARD_VERSION, fallback_text=title, body=body))


@dataclass(frozen=True)
class DigestView:
    locale: str | None
    date: str
    new_alerts: list[AccountLine]
    trending_down: list[AccountLine]
    nps_movers: list[AccountLine]
    renewals: list[AccountLine]


def build_digest_card(view: DigestView) -> dict[str, Any]:
    t = Strings(view.locale)
    title = t("digest.title", date=view.date)
    body: list[CardElement] = [TextBlock(text=title, size="Medium", weight="Bolder", wrap=True)]
    for key, lines in (
        ("digest.new_alerts", view.new_alerts),
        ("digest.trending_down", view.trending_down),
        ("digest.nps_movers", view.nps_movers),
        ("digest.renewals", view.renewals),
    ):
        body.append(TextBlock(text=f"{t(key)} ({len(lines)})", weight="Bolder", wrap=True, spacing="Medium"))
        if not lines:
            body.append(TextBlock(text=t("digest.none"), is_subtle=True, wrap=True, spacing="None"))
        for line in lines[:8]:
            body.append(
                RichTextBlock(inlines=[TextRun(text=line.account, weight="Bolder"), TextRun(text=f" — {line.detail}")])
            )
    return _dump(AdaptiveCard(version=CARD_VERSION, fallback_text=title, body=body))
