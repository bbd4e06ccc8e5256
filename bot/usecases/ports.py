"""What use cases need from storage, as protocols: the unit of work and the repositories they reach through it.

storage.uow.UnitOfWork is the real one; tests/unit/fakes.py holds in-memory ones, so a use case can be unit-tested
without a database (the style of cosmicpython's AbstractUnitOfWork and FakeUnitOfWork). A use case typed with one
touches nothing the protocol does not name. Every use case is on them: surveys (asking and every card action), the
NPS report, usage ingestion, campaigns and their report, installs and commands (lifecycle), privacy, recall,
customer success (alerts) and delivery.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from storage.engine import DATABASE_UNAVAILABLE as DATABASE_UNAVAILABLE  # the errors a use case may wait out
from storage.models import ROW_ID_MAX as ROW_ID_MAX  # the largest id a row can have (32-bit on PostgreSQL)

if TYPE_CHECKING:  # named in signatures only: a command that needs one protocol does not load every repository
    from bot.engagement.usage import FeatureUse, UsageEvent
    from storage.alerts import NewAlert
    from storage.campaigns import NewTouch
    from storage.outbox import NewMessage, TenantHold
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

    async def rescore_pending_alert(self, kind: str, instance_id: str, score: int) -> None:
        """The alert waiting for the next alert run says the newest score."""

    async def withdraw_pending_alert(self, kind: str, instance_id: str) -> None:
        """Drop the alert waiting for the next alert run (one already raised stays)."""


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


# -- delivery (bot.usecases.delivery, bot.usecases.delivery_report) -------------------------------------------------


class Conversation(Protocol):
    """How to reach a conversation (storage.models.ConversationReference): what the connector sends through."""

    @property
    def conversation_id(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def scope(self) -> str: ...  # personal | team | groupChat
    @property
    def channel_id(self) -> str: ...  # Bot Framework channel, "msteams"
    @property
    def service_url(self) -> str: ...
    @property
    def bot_id(self) -> str: ...
    @property
    def removed_at(self) -> datetime | None: ...


class Queued(Protocol):
    """A message in the outbox (storage.models.OutboxMessage), as a worker that claimed it reads it."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def user_id(self) -> int | None: ...
    @property
    def conversation_id(self) -> str: ...  # or a pending chat's placeholder (bot.engagement.reach.pending_chat)
    @property
    def payload(self) -> str: ...  # the card and its summary, as JSON
    @property
    def survey_instance_id(self) -> str | None: ...
    @property
    def operation(self) -> str: ...  # send | update | delete
    @property
    def target_activity_id(self) -> str | None: ...
    @property
    def quiet_hours(self) -> bool: ...
    @property
    def attempts(self) -> int: ...  # also the claim's number: a write for an older claim changes nothing


class Delivered(Queued, Protocol):
    """A message with its outcome so far, for `nurture deliveries`."""

    @property
    def status(self) -> str: ...
    @property
    def last_status_code(self) -> int | None: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def sent_at(self) -> datetime | None: ...
    @property
    def activity_id(self) -> str | None: ...


class DeliveryOutbox(Protocol):
    """The outbox as delivery workers use it: claims with leases (a claim's number is the row's `attempts`), the
    tenants each worker holds, and outcomes. Every write for a claim is refused once the claim is no longer the
    worker's, which is what keeps a message from being sent twice."""

    async def claim(
        self, worker: str, now: datetime, lease: timedelta, limit: int, only: Collection[str] | None = None
    ) -> Sequence[Queued]:
        """Take up to `limit` due messages (of the tenants `only`) for `lease`."""

    async def unclaim(self, worker: str, message_ids: Collection[int]) -> None:
        """Give claimed messages back untouched."""

    async def begin(
        self, worker: str, claims: Collection[tuple[int, int]], now: datetime, lease: timedelta
    ) -> set[int]:
        """Mark claimed messages as leaving now; the ids still this worker's."""

    async def renew(self, worker: str, claims: Collection[tuple[int, int]], lease_until: datetime) -> set[int]:
        """Extend the leases of claimed messages not sent yet; the ids renewed."""

    async def unmark(self, worker: str, message_id: int, attempt: int) -> bool:
        """Take back `begin`'s mark of a message that did not leave."""

    async def give_back(self, worker: str, message_id: int, attempt: int, due: datetime) -> bool:
        """Return a claimed message to the queue, due at `due`, as if it had not been claimed."""

    async def settle_abandoned(self, now: datetime, *, resend: bool = False) -> list[tuple[int, str | None]]:
        """Messages a worker left leaving past their lease: `unknown` (or queued again with `resend`); each one's id
        and ask."""

    async def finish(
        self,
        message_id: int,
        worker: str,
        *,
        status: str,
        now: datetime,
        retry_at: datetime | None,
        status_code: int | None,
        error: str | None,
        activity_id: str | None,
        attempt: int,
    ) -> bool:
        """Write an attempt's outcome; False when the claim is no longer this worker's."""

    async def conversation_wait(
        self, conversation_id: str, now: datetime, limits: Sequence[tuple[int, float]]
    ) -> float:
        """Seconds until one more send into the conversation keeps within each (count, seconds) limit."""

    async def recent_sends(self, conversation_ids: Collection[str], since: datetime) -> dict[str, list[datetime]]: ...

    async def retarget(self, pending_chat: str, conversation_id: str) -> int:
        """Point the messages that waited for a person's chat at the chat now opened."""

    async def mark_unreachable(self, user_id: int, reason: str, now: datetime) -> None: ...

    async def hold_tenants(
        self, worker: str, tenants: Collection[str], now_epoch: float, hold_seconds: float, quiet_seconds: float
    ) -> dict[str, TenantHold]:
        """Hold these tenants (or renew the hold) where no other worker does; the ones held."""

    async def release_tenants(self, worker: str, quiet_until: dict[str, float]) -> None: ...

    async def pauses(self, buckets: Collection[str]) -> dict[str, float]:
        """The end of each bucket's 429 pause (epoch seconds)."""

    async def pause_tenant(self, tenant_id: str, until_epoch: float, throttled: int = 1) -> None: ...


class DeliveryConversations(Protocol):
    async def get(self, conversation_id: str) -> Conversation | None: ...

    async def get_many(self, conversation_ids: Collection[str]) -> Mapping[str, Conversation]: ...

    async def personal_for(self, user_id: int) -> Chat | None: ...

    async def anchor(self, tenant_id: str) -> Conversation | None:
        """A live conversation of the bot in the tenant: what a new chat is opened through."""

    async def upsert(self, target: ConversationTarget, now: datetime) -> None: ...


class DeliveryPeople(Protocol):
    async def get_by_id(self, user_id: int) -> Person | None: ...

    async def time_zones(self, user_ids: Collection[int]) -> dict[int, str | None]: ...

    async def mark_installed(self, user_id: int, now: datetime) -> None: ...


class DeliveredAsks(Protocol):
    async def delivered(self, instance_id: str, outcome: str, activity_id: str | None, now: datetime) -> None:
        """The outbox's word on an ask: sent (with the Teams activity id), failed or unknown."""


class DeliveryUnitOfWork(UnitOfWork, Protocol):
    @property
    def outbox(self) -> DeliveryOutbox: ...
    @property
    def conversations(self) -> DeliveryConversations: ...
    @property
    def users(self) -> DeliveryPeople: ...
    @property
    def surveys(self) -> DeliveredAsks: ...


class OutboxRead(Protocol):
    async def all(self) -> Sequence[tuple[Delivered, str | None]]:
        """Every message with its recipient's AAD object id."""

    async def throttled(self) -> int:
        """429s answered so far, over every tenant."""


class DeliveryReportUnitOfWork(UnitOfWork, Protocol):
    @property
    def outbox(self) -> OutboxRead: ...
