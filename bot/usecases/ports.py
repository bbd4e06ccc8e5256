"""What use cases need from storage, as protocols: the unit of work and the repositories they reach through it.

storage.uow.UnitOfWork is the real one; tests/unit/fakes.py holds in-memory ones, so a use case can be unit-tested
without a database (the style of cosmicpython's AbstractUnitOfWork and FakeUnitOfWork). A use case typed with one
touches nothing the protocol does not name. On them so far: surveys (asking and every card action), the NPS report,
usage ingestion, campaigns and their report, installs and commands (lifecycle), privacy, recall and customer
success (alerts); delivery still uses the concrete unit of work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Protocol, Self

from bot.engagement.usage import FeatureUse, UsageEvent
from storage.alerts import NewAlert
from storage.campaigns import NewTouch
from storage.models import ROW_ID_MAX as ROW_ID_MAX  # the largest id a row can have (32-bit on PostgreSQL)
from storage.outbox import NewMessage
from storage.people import ConversationTarget, UserProfile
from storage.surveys import AskKey, NewAsk, ScoredAnswer, SubmitOutcome
from storage.targeting import AudienceGroup, AudienceQuery
from storage.usage import RecordResult


class UnitOfWork(Protocol):
    """One transaction: `async with factory() as uow: ...; await uow.commit()`; rolled back if not committed."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def reads_only(self) -> None:
        """Declared first: this transaction only reads (it then holds no writer's lock)."""

    async def commit(self) -> None: ...


class AnswersRead(Protocol):
    async def scored_answers(self, tenant_id: str | None = None) -> list[ScoredAnswer]:
        """Every NPS answer (of one tenant), oldest first."""

    async def sent_instances(self, tenant_id: str | None = None) -> list[tuple[datetime, bool]]:
        """(sent at, answered?) for every ask that was delivered: the response rate's denominator."""


class ReportsUnitOfWork(UnitOfWork, Protocol):
    @property
    def surveys(self) -> AnswersRead: ...


class PrivacyStore(Protocol):
    async def forget(self, aad_object_id: str) -> dict[str, int]:
        """Delete every row about one person; rows deleted per table."""

    async def purge(
        self, comments_before: datetime, activities_before: datetime, usage_events_before: datetime
    ) -> dict[str, int]:
        """Blank comments and delete logs and raw events older than the cutoffs; what changed per kind."""


class PrivacyUnitOfWork(UnitOfWork, Protocol):
    @property
    def privacy(self) -> PrivacyStore: ...


class SentCard(Protocol):
    """A card Teams accepted: what a recall takes back."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def user_id(self) -> int | None: ...
    @property
    def conversation_id(self) -> str: ...
    @property
    def activity_id(self) -> str | None: ...


class RecallOutbox(Protocol):
    async def cancel_queued(self, kind: str, reason: str, tenant_id: str | None = None) -> int:
        """Cancel the queued, unsent messages of one kind; how many."""

    async def sent_cards(self, kind: str, tenant_id: str | None = None) -> Sequence[SentCard]:
        """Cards of one kind that Teams accepted (they have an activity id)."""

    async def enqueue(self, message: NewMessage, now: datetime) -> int | None:
        """The new row's id; None when a message with the same dedupe key was queued before."""


class RecallUnitOfWork(UnitOfWork, Protocol):
    @property
    def outbox(self) -> RecallOutbox: ...


class UsageStore(Protocol):
    async def record(self, events: Sequence[UsageEvent], now: datetime) -> RecordResult:
        """Store new events and fold them into the rollups; events already known count as duplicates."""

    async def active_days(self, tenant_id: str, since: date) -> dict[str, set[date]]:
        """Each person's active days (by AAD object id) from `since` on."""


class IngestUnitOfWork(UnitOfWork, Protocol):
    @property
    def usage(self) -> UsageStore: ...


class Touch(Protocol):
    """One campaign decision: a card sent, or held back (holdout)."""

    @property
    def campaign_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def aad_object_id(self) -> str: ...
    @property
    def holdout(self) -> bool: ...
    @property
    def decided_at(self) -> datetime: ...


class TouchesRead(Protocol):
    async def all_touches(self) -> Sequence[Touch]:
        """Every campaign decision, oldest first."""


class CampaignReportUnitOfWork(UnitOfWork, Protocol):
    @property
    def campaigns(self) -> TouchesRead: ...

    @property
    def usage(self) -> UsageStore: ...


# -- NPS surveys (bot.usecases.surveys) ------------------------------------------------------------------------------


class Person(Protocol):
    """A stored person (storage.models.User), as asking and answering read them."""

    @property
    def id(self) -> int: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def aad_object_id(self) -> str: ...
    @property
    def locale(self) -> str | None: ...
    @property
    def time_zone(self) -> str | None: ...
    @property
    def installed_at(self) -> datetime | None: ...
    @property
    def uninstalled_at(self) -> datetime | None: ...
    @property
    def unreachable_at(self) -> datetime | None: ...  # Teams refused the last message
    @property
    def opted_out_at(self) -> datetime | None: ...
    @property
    def nps_declined_at(self) -> datetime | None: ...
    @property
    def nps_snoozed_until(self) -> datetime | None: ...


class Ask(Protocol):
    """An NPS ask (storage.models.SurveyInstance)."""

    @property
    def id(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def status(self) -> str: ...  # queued, sent, answered, snoozed, declined, closed, failed
    @property
    def expires_at(self) -> datetime: ...
    @property
    def activity_id(self) -> str | None: ...  # the card in the chat, once Teams took it


class GivenAnswer(Protocol):
    @property
    def score(self) -> int: ...
    @property
    def comment(self) -> str | None: ...
    @property
    def answered_at(self) -> datetime: ...


class Submitted(Protocol):
    @property
    def outcome(self) -> SubmitOutcome: ...
    @property
    def answer(self) -> GivenAnswer: ...


class SurveysStore(Protocol):
    async def add_instance(self, ask: NewAsk) -> None: ...

    async def answering(self, instance_id: str) -> tuple[Ask, Person, GivenAnswer | None] | None:
        """An ask, the person it was sent to and their answer so far."""

    async def set_status(self, instance_id: str, status: str) -> None: ...

    async def expired_unanswered(self, now: datetime) -> Sequence[tuple[Ask, Person | None]]:
        """Delivered asks never answered, past their expiry, with the person asked."""

    async def last_asks(self, user_ids: Sequence[int]) -> dict[int, datetime]: ...

    async def last_answers(self, aad_object_ids: Sequence[str]) -> dict[tuple[str, str], datetime]:
        """(tenant, AAD object id) → when that person last answered."""

    async def submit(
        self,
        instance: AskKey,
        aad_object_id: str,
        score: int,
        comment: str | None,
        now: datetime,
        grace_until: datetime,
    ) -> Submitted:
        """Store the answer once: created, unchanged, edited (before `grace_until`) or locked."""

    async def add_pending_alert(
        self, kind: str, instance: AskKey, aad_object_id: str, score: int, now: datetime
    ) -> bool:
        """False when an alert for the same cause already exists."""


class Chat(Protocol):
    @property
    def conversation_id(self) -> str: ...


class ChatsRead(Protocol):
    async def personal_for(self, user_id: int) -> Chat | None:
        """The person's live personal chat with the bot."""

    async def with_personal_chat(self, user_ids: Sequence[int]) -> set[int]: ...

    async def anchored(self, tenant_ids: Sequence[str]) -> set[str]:
        """The tenants where the bot has a live conversation."""


class NpsPreferences(Protocol):
    async def set_nps_snooze(self, user_id: int, until: datetime | None, now: datetime) -> None: ...

    async def set_nps_declined(self, user_id: int, now: datetime) -> None: ...


class SurveyOutbox(Protocol):
    async def enqueue(self, message: NewMessage, now: datetime) -> int | None: ...

    async def sends_since(self, user_ids: Sequence[int], since: datetime) -> dict[int, list[datetime]]:
        """Each person's proactive messages since `since` (the attention budget)."""


class SurveysUnitOfWork(UnitOfWork, Protocol):
    @property
    def surveys(self) -> SurveysStore: ...
    @property
    def conversations(self) -> ChatsRead: ...
    @property
    def users(self) -> NpsPreferences: ...
    @property
    def outbox(self) -> SurveyOutbox: ...
    @property
    def usage(self) -> UsageStore: ...


# -- installs and commands (bot.usecases.lifecycle) -----------------------------------------------------------------


class ActivityLog(Protocol):
    async def record(
        self,
        *,
        conversation_id: str,
        activity_id: str,
        activity_type: str,
        tenant_id: str | None,
        aad_object_id: str | None,
        now: datetime,
    ) -> bool:
        """Record an inbound activity; False when the same one was recorded before (Teams retries)."""

    async def forget(self, conversation_id: str, activity_id: str) -> None:
        """Drop a claim whose turn failed, so Teams' retry is processed."""


class TenantsWrite(Protocol):
    async def touch(self, tenant_id: str, now: datetime) -> None:
        """The tenant is known, and was seen now."""


class PeopleWrite(Protocol):
    async def upsert(self, profile: UserProfile, now: datetime) -> int:
        """Create or refresh the person; their row id."""

    async def mark_installed(self, user_id: int, now: datetime) -> None: ...

    async def mark_uninstalled(self, user_id: int, now: datetime) -> None: ...

    async def set_opted_out(self, user_id: int, opted_out: bool, now: datetime) -> None: ...


class ConversationsWrite(Protocol):
    async def upsert(self, target: ConversationTarget, now: datetime) -> None:
        """How to reach a conversation again (live from now on)."""

    async def mark_removed(self, conversation_id: str, now: datetime) -> None: ...


class LifecycleUnitOfWork(PrivacyUnitOfWork, ReportsUnitOfWork, Protocol):
    @property
    def activities(self) -> ActivityLog: ...
    @property
    def tenants(self) -> TenantsWrite: ...
    @property
    def users(self) -> PeopleWrite: ...
    @property
    def conversations(self) -> ConversationsWrite: ...
    @property
    def usage(self) -> UsageStore: ...


# -- campaigns (bot.usecases.campaigns, bot.usecases.audience) ------------------------------------------------------


class AudienceStore(Protocol):
    async def groups(
        self, query: AudienceQuery, take: Callable[[list[AudienceGroup]], None], tenant_id: str | None = None
    ) -> None:
        """The audience query's groups of people alike (of one tenant, or all), handed to `take` a batch at a time."""

    async def chat_owners(self, tenant_id: str | None = None) -> set[int]:
        """The user rows with a live personal chat with the bot."""


class SentTouch(Protocol):
    """A campaign card's touch, as its "stop these" button names it."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def aad_object_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def step(self) -> str: ...


class CampaignsStore(Protocol):
    async def chats(self, user_ids: Sequence[int]) -> dict[int, str]:
        """Each person's live personal conversation id, where they have one."""

    async def add_touches(self, touches: Sequence[NewTouch], now: datetime) -> list[int | None]:
        """Each touch's new id; None where that step was recorded for the person before."""

    async def link_outbox(self, links: Sequence[tuple[int, int]]) -> None:
        """(touch, outbox message) pairs: which card each touch sent."""

    async def touch(self, touch_id: int) -> SentTouch | None: ...

    async def stop(self, user_id: int, kind: str, now: datetime) -> int:
        """Opt the person out of one kind; queued messages of that kind cancelled."""

    async def resume(self, user_id: int, kind: str) -> None: ...

    async def renewal_alert_keys(self) -> set[str]:
        """The causes of every renewal alert raised so far."""

    async def add_renewal_alert(self, tenant_id: str, cause_key: str, detail: str, now: datetime) -> bool:
        """False when an alert for the same cause exists."""


class CampaignTenants(Protocol):
    async def ids(self) -> list[str]: ...

    async def renewals(self) -> dict[str, date]:
        """Each tenant's renewal date, where one is set."""


class CampaignPeople(Protocol):
    async def get(self, tenant_id: str, aad_object_id: str) -> Person | None: ...

    async def adopt_app_users(self, tenant_id: str, now: datetime) -> int:
        """Store the tenant's app users the bot has not met (chats opened by installing the app); how many."""


class CampaignChats(Protocol):
    async def anchored(self, tenant_ids: Sequence[str]) -> set[str]: ...


class CampaignOutbox(Protocol):
    async def enqueue_many(self, messages: Sequence[NewMessage], now: datetime) -> list[int | None]:
        """Each message's new id; None for one queued before (the same dedupe key)."""


class CampaignsUnitOfWork(UnitOfWork, Protocol):
    @property
    def audience(self) -> AudienceStore: ...
    @property
    def campaigns(self) -> CampaignsStore: ...
    @property
    def tenants(self) -> CampaignTenants: ...
    @property
    def users(self) -> CampaignPeople: ...
    @property
    def conversations(self) -> CampaignChats: ...
    @property
    def outbox(self) -> CampaignOutbox: ...


# -- customer success (bot.usecases.alerts) --------------------------------------------------------------------------


class Account(Protocol):
    """A tenant as CSMs see it (storage.models.Tenant)."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def display_name(self) -> str | None: ...
    @property
    def renewal_date(self) -> date | None: ...
    @property
    def health_score(self) -> float | None: ...  # the last run's score
    @property
    def at_risk(self) -> bool | None: ...  # the last run's verdict: an alert is raised when it turns True


class AlertRecord(Protocol):
    """A stored alert (storage.models.Alert)."""

    @property
    def id(self) -> int: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def kind(self) -> str: ...  # at_risk | detractor | renewal
    @property
    def status(self) -> str: ...  # open | claimed | snoozed | resolved
    @property
    def reasons(self) -> str: ...  # JSON list of phrases (bot.engagement.phrases.stored_phrases reads it)
    @property
    def score(self) -> float | None: ...
    @property
    def survey_instance_id(self) -> str | None: ...
    @property
    def claimed_by(self) -> str | None: ...
    @property
    def snoozed_until(self) -> datetime | None: ...
    @property
    def resolved_by(self) -> str | None: ...
    @property
    def escalation_level(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...


class AlertCause(Protocol):
    """Something that should become an alert at the next run (storage.models.PendingAlert)."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...  # detractor | renewal
    @property
    def tenant_id(self) -> str: ...
    @property
    def survey_instance_id(self) -> str | None: ...
    @property
    def cause_key(self) -> str | None: ...
    @property
    def detail(self) -> str | None: ...
    @property
    def score(self) -> int | None: ...
    @property
    def created_at(self) -> datetime: ...


class AlertEntry(Protocol):
    """One line of an alert's log (storage.models.AlertLog)."""

    @property
    def at(self) -> datetime: ...
    @property
    def actor(self) -> str | None: ...  # a CSM's AAD object id; None for Nurture itself
    @property
    def action(self) -> str: ...
    @property
    def note(self) -> str | None: ...


class AlertsStore(Protocol):
    async def assignments(self) -> dict[str, list[str]]:
        """tenant → assigned CSMs in escalation order."""

    async def tenants(self) -> Sequence[Account]: ...

    async def installed_counts(self) -> dict[str, int]:
        """People with the app installed, per tenant."""

    async def set_health(self, tenant_id: str, score: float, at_risk: bool, now: datetime) -> None: ...

    async def raise_alert(self, alert: NewAlert, now: datetime, escalate_at: datetime | None) -> int | None:
        """The new alert's id; None while an alert for the same cause is still open."""

    async def get(self, alert_id: int, *, lock: bool = False) -> AlertRecord | None:
        """`lock`: held until the transaction ends, so two clicks on one alert take turns."""

    async def update(self, alert_id: int, now: datetime, **values: object) -> None:
        """Set the named fields of the alert (and when it changed)."""

    async def log(
        self, alert_id: int, at: datetime, actor: str | None, action: str, note: str | None = None
    ) -> None: ...

    async def history(self, alert_id: int) -> Sequence[AlertEntry]:
        """The alert's log, oldest first."""

    async def all(self, *, open_only: bool = False) -> Sequence[AlertRecord]: ...

    async def due_escalations(self, now: datetime) -> Sequence[AlertRecord]:
        """Open alerts nobody claimed by their deadline."""

    async def wake_snoozed(self, now: datetime) -> list[int]:
        """Open again the alerts whose snooze ended; their ids."""

    async def pending_causes(self) -> Sequence[AlertCause]: ...

    async def mark_cause(self, pending_id: int, status: str) -> None:
        """`raised`, or `merged` into an alert already open for the same cause."""

    async def detractor_comment(self, survey_instance_id: str) -> tuple[int, str | None] | None:
        """The detractor's current score and comment."""


class HealthUsage(UsageStore, Protocol):
    async def features(self, tenant_id: str, names: Sequence[str]) -> dict[str, dict[str, FeatureUse]]:
        """Per person (AAD object id), their use of the features named."""

    async def tenant_days(self, tenant_id: str, since: date) -> dict[date, tuple[int, int]]:
        """Per day from `since` on: (active people, events)."""


class AccountsRead(Protocol):
    async def get(self, tenant_id: str) -> Account | None: ...


class PeopleRead(Protocol):
    async def find_by_aad(self, aad_object_id: str) -> Sequence[Person]:
        """The person in every tenant where the bot met them."""


class Channel(Protocol):
    """A conversation the bot was added to (storage.models.ConversationReference)."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def conversation_id(self) -> str: ...
    @property
    def removed_at(self) -> datetime | None: ...


class CsmChats(Protocol):
    async def personal_for(self, user_id: int) -> Chat | None: ...

    async def get(self, conversation_id: str) -> Channel | None: ...


class AlertOutbox(Protocol):
    async def exists(self, dedupe_key: str) -> bool:
        """A message with this dedupe key was queued before."""

    async def enqueue(self, message: NewMessage, now: datetime) -> int | None: ...


class AlertsUnitOfWork(UnitOfWork, Protocol):
    @property
    def alerts(self) -> AlertsStore: ...
    @property
    def usage(self) -> HealthUsage: ...
    @property
    def surveys(self) -> AnswersRead: ...
    @property
    def tenants(self) -> AccountsRead: ...
    @property
    def users(self) -> PeopleRead: ...
    @property
    def conversations(self) -> CsmChats: ...
    @property
    def outbox(self) -> AlertOutbox: ...
