"""In-memory stand-ins for the storage protocols of bot/usecases/ports.py: use cases unit-tested without a database.

Each fake keeps what it was given in plain lists and records what the use case asked of it, so a test can check both
the result and the conversation with storage (a read-only transaction declared, a commit made or not)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import Self

from bot.engagement.delivery import window_wait
from bot.engagement.phrases import phrase_json
from bot.engagement.usage import FeatureUse, UsageEvent
from storage.alerts import NewAlert
from storage.campaigns import NewTouch
from storage.outbox import NewMessage, TenantHold
from storage.people import ConversationTarget, UserProfile
from storage.surveys import AskKey, NewAsk, ScoredAnswer, SubmitOutcome
from storage.targeting import AudienceGroup, AudienceQuery
from storage.usage import RecordResult


@dataclass
class Person:
    """A stored person (storage.models.User): what asking and answering read, changed by the fake's writes."""

    id: int
    tenant_id: str
    aad_object_id: str
    locale: str | None = "en-US"
    time_zone: str | None = "UTC"
    installed_at: datetime | None = None
    uninstalled_at: datetime | None = None
    unreachable_at: datetime | None = None
    opted_out_at: datetime | None = None
    nps_declined_at: datetime | None = None
    nps_snoozed_until: datetime | None = None


@dataclass
class Ask:
    id: str
    tenant_id: str
    user_id: int
    status: str
    created_at: datetime
    expires_at: datetime
    forced: bool = False
    activity_id: str | None = None


@dataclass
class Answer:
    instance_id: str
    tenant_id: str
    aad_object_id: str
    score: int
    comment: str | None
    answered_at: datetime
    edits: int = 0


@dataclass
class Cause:
    """A pending alert (storage.models.PendingAlert)."""

    id: int
    kind: str
    tenant_id: str
    created_at: datetime
    survey_instance_id: str | None = None
    aad_object_id: str | None = None
    score: int | None = None
    cause_key: str | None = None
    detail: str | None = None
    status: str = "pending"


@dataclass(frozen=True)
class Submitted:
    outcome: SubmitOutcome
    answer: Answer


@dataclass
class FakeSurveys:
    """Asks, answers and pending alerts, kept as the tables keep them (one answer an ask and person, one alert a
    cause); `answers`/`asks` also feed the NPS report as scored answers and delivered asks."""

    people: dict[int, Person] = field(default_factory=dict)
    instances: dict[str, Ask] = field(default_factory=dict)
    given: dict[tuple[str, str], Answer] = field(default_factory=dict)  # (ask, AAD object id)
    causes: list[Cause] = field(default_factory=list)  # pending alerts: what the next alert run raises
    answers: list[ScoredAnswer] = field(default_factory=list)
    asks: list[tuple[str, datetime, bool]] = field(default_factory=list)  # (tenant, sent at, answered?)

    async def scored_answers(self, tenant_id: str | None = None) -> list[ScoredAnswer]:
        found = [a for a in self.answers if tenant_id is None or a.tenant_id == tenant_id]
        return sorted(found, key=lambda a: a.answered_at)

    async def sent_instances(self, tenant_id: str | None = None) -> list[tuple[datetime, bool]]:
        return [(at, answered) for tenant, at, answered in self.asks if tenant_id is None or tenant == tenant_id]

    async def add_instance(self, ask: NewAsk) -> None:
        self.instances[ask.id] = Ask(
            ask.id, ask.tenant_id, ask.user_id, ask.status, ask.created_at, ask.expires_at, ask.forced
        )

    async def answering(self, instance_id: str) -> tuple[Ask, Person, Answer | None] | None:
        ask = self.instances.get(instance_id)
        if ask is None:
            return None
        owner = self.people[ask.user_id]
        return ask, owner, self.given.get((ask.id, owner.aad_object_id))

    async def set_status(self, instance_id: str, status: str) -> None:
        self.instances[instance_id].status = status

    async def delivered(self, instance_id: str, outcome: str, activity_id: str | None, now: datetime) -> None:
        ask = self.instances.get(instance_id)
        if ask is not None and ask.status == "queued":
            ask.status = outcome
            ask.activity_id = activity_id if outcome == "sent" else None

    async def expired_unanswered(self, now: datetime) -> list[tuple[Ask, Person | None]]:
        answered = {ask for ask, _ in self.given}
        return [
            (a, self.people.get(a.user_id))
            for a in sorted(self.instances.values(), key=lambda a: a.created_at)
            if a.status == "sent" and a.expires_at < now and a.activity_id is not None and a.id not in answered
        ]

    async def last_asks(self, user_ids: Sequence[int]) -> dict[int, datetime]:
        found: dict[int, datetime] = {}
        for a in self.instances.values():
            if a.user_id in user_ids and (a.user_id not in found or a.created_at > found[a.user_id]):
                found[a.user_id] = a.created_at
        return found

    async def last_answers(self, aad_object_ids: Sequence[str]) -> dict[tuple[str, str], datetime]:
        found: dict[tuple[str, str], datetime] = {}
        for answer in self.given.values():
            key = (answer.tenant_id, answer.aad_object_id)
            if answer.aad_object_id in aad_object_ids and (key not in found or answer.answered_at > found[key]):
                found[key] = answer.answered_at
        return found

    async def submit(
        self,
        instance: AskKey,
        aad_object_id: str,
        score: int,
        comment: str | None,
        now: datetime,
        grace_until: datetime,
    ) -> Submitted:
        key = (instance.id, aad_object_id)
        existing = self.given.get(key)
        if existing is None:
            self.given[key] = Answer(instance.id, instance.tenant_id, aad_object_id, score, comment, now)
            return Submitted(SubmitOutcome.CREATED, self.given[key])
        if existing.score == score and (comment is None or comment == existing.comment):
            return Submitted(SubmitOutcome.UNCHANGED, existing)
        if now > grace_until:
            return Submitted(SubmitOutcome.LOCKED, existing)
        existing.score = score
        existing.comment = comment if comment is not None else existing.comment
        existing.edits += 1
        return Submitted(SubmitOutcome.EDITED, existing)

    async def add_pending_alert(
        self, kind: str, instance: AskKey, aad_object_id: str, score: int, now: datetime
    ) -> bool:
        if any(c.kind == kind and c.survey_instance_id == instance.id for c in self.causes):
            return False
        self.causes.append(
            Cause(len(self.causes) + 1, kind, instance.tenant_id, now, instance.id, aad_object_id, score)
        )
        return True

    def _pending(self, kind: str, instance_id: str) -> list[Cause]:
        return [c for c in self.causes if (c.kind, c.survey_instance_id, c.status) == (kind, instance_id, "pending")]

    async def rescore_pending_alert(self, kind: str, instance_id: str, score: int) -> None:
        for cause in self._pending(kind, instance_id):
            cause.score = score

    async def withdraw_pending_alert(self, kind: str, instance_id: str) -> None:
        for cause in self._pending(kind, instance_id):
            self.causes.remove(cause)


@dataclass(frozen=True)
class Chat:
    conversation_id: str


@dataclass(frozen=True)
class Reference:
    """How to reach a conversation (storage.models.ConversationReference)."""

    conversation_id: str
    tenant_id: str
    scope: str
    channel_id: str
    service_url: str
    bot_id: str
    user_id: int | None = None
    removed_at: datetime | None = None

    @classmethod
    def of(cls, target: ConversationTarget) -> Reference:
        return cls(
            target.conversation_id,
            target.tenant_id,
            target.scope,
            target.channel_id,
            target.service_url,
            target.bot_id,
            target.user_id,
        )


@dataclass
class FakeConversations:
    chats: dict[int, str] = field(default_factory=dict)  # user row → personal conversation id
    anchored_tenants: set[str] = field(default_factory=set)
    live: dict[str, ConversationTarget] = field(default_factory=dict)  # by conversation id
    removed: list[str] = field(default_factory=list)

    async def upsert(self, target: ConversationTarget, now: datetime) -> None:
        known = self.live.get(target.conversation_id)
        if target.user_id is None and known is not None:
            target = replace(target, user_id=known.user_id)  # a channel event names no user: keep the one known
        self.live[target.conversation_id] = target
        self.anchored_tenants.add(target.tenant_id)
        if target.scope == "personal" and target.user_id is not None:
            self.chats[target.user_id] = target.conversation_id

    async def mark_removed(self, conversation_id: str, now: datetime) -> None:
        self.removed.append(conversation_id)
        self.live.pop(conversation_id, None)
        self.chats = {user: chat for user, chat in self.chats.items() if chat != conversation_id}

    async def personal_for(self, user_id: int) -> Chat | None:
        return Chat(self.chats[user_id]) if user_id in self.chats else None

    async def get(self, conversation_id: str) -> Reference | None:
        target = self.live.get(conversation_id)
        return Reference.of(target) if target is not None else None

    async def get_many(self, conversation_ids: Collection[str]) -> dict[str, Reference]:
        return {c: Reference.of(self.live[c]) for c in conversation_ids if c in self.live}

    async def anchor(self, tenant_id: str) -> Reference | None:
        live = [t for t in self.live.values() if t.tenant_id == tenant_id]
        return Reference.of(live[-1]) if live else None  # the latest, as the table's newest update

    async def with_personal_chat(self, user_ids: Sequence[int]) -> set[int]:
        return {u for u in user_ids if u in self.chats}

    async def anchored(self, tenant_ids: Sequence[str]) -> set[str]:
        return {t for t in tenant_ids if t in self.anchored_tenants}


@dataclass
class FakeUsers:
    """People, kept in the survey fake (`people`, by row id) so asks and answers find them."""

    surveys: FakeSurveys

    async def upsert(self, profile: UserProfile, now: datetime) -> int:
        people = self.surveys.people
        found = next(
            (
                p
                for p in people.values()
                if (p.tenant_id, p.aad_object_id) == (profile.tenant_id, profile.aad_object_id)
            ),
            None,
        )
        if found is None:
            row = max(people, default=0) + 1
            found = people[row] = Person(row, profile.tenant_id, profile.aad_object_id)
        found.locale = profile.locale or found.locale
        found.time_zone = profile.time_zone or found.time_zone
        found.unreachable_at = None  # any activity from the person means Teams can reach them again
        return found.id

    async def get(self, tenant_id: str, aad_object_id: str) -> Person | None:
        people = self.surveys.people.values()
        return next((p for p in people if (p.tenant_id, p.aad_object_id) == (tenant_id, aad_object_id)), None)

    async def get_by_id(self, user_id: int) -> Person | None:
        return self.surveys.people.get(user_id)

    async def time_zones(self, user_ids: Collection[int]) -> dict[int, str | None]:
        return {u: self.surveys.people[u].time_zone for u in user_ids if u in self.surveys.people}

    async def find_by_aad(self, aad_object_id: str) -> list[Person]:
        return [p for p in self.surveys.people.values() if p.aad_object_id == aad_object_id]

    async def adopt_app_users(self, tenant_id: str, now: datetime) -> int:
        return 0  # no Graph here: every app user is met already

    async def mark_installed(self, user_id: int, now: datetime) -> None:
        person = self.surveys.people[user_id]
        person.installed_at, person.uninstalled_at = now, None

    async def mark_uninstalled(self, user_id: int, now: datetime) -> None:
        self.surveys.people[user_id].uninstalled_at = now

    async def set_opted_out(self, user_id: int, opted_out: bool, now: datetime) -> None:
        self.surveys.people[user_id].opted_out_at = now if opted_out else None

    async def set_nps_snooze(self, user_id: int, until: datetime | None, now: datetime) -> None:
        self.surveys.people[user_id].nps_snoozed_until = until

    async def set_nps_declined(self, user_id: int, now: datetime) -> None:
        self.surveys.people[user_id].nps_declined_at = now


@dataclass
class FakePrivacy:
    forgotten: list[str] = field(default_factory=list)
    purges: list[tuple[datetime, datetime, datetime]] = field(default_factory=list)

    async def forget(self, aad_object_id: str) -> dict[str, int]:
        self.forgotten.append(aad_object_id)
        return {"users": 1}

    async def purge(
        self, comments_before: datetime, activities_before: datetime, usage_events_before: datetime
    ) -> dict[str, int]:
        self.purges.append((comments_before, activities_before, usage_events_before))
        return {"nps_comments_blanked": 0}


@dataclass(frozen=True)
class Card:
    id: int
    kind: str
    tenant_id: str
    user_id: int | None
    conversation_id: str
    activity_id: str | None
    queued: bool = False  # still waiting to be sent (no activity id yet)


@dataclass
class Message:
    """An outbox row (storage.models.OutboxMessage): what was queued, and its claim, lease and outcome."""

    id: int
    kind: str
    tenant_id: str
    user_id: int | None
    conversation_id: str
    payload: str
    survey_instance_id: str | None = None
    operation: str = "send"
    target_activity_id: str | None = None
    quiet_hours: bool = False
    attempts: int = 0
    status: str = "queued"
    leased_by: str | None = None
    lease_until: datetime | None = None
    attempt_started_at: datetime | None = None
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    activity_id: str | None = None

    def held_by(self, worker: str, attempt: int | None = None) -> bool:
        """Claimed by `worker` (as claim number `attempt`) and not settled."""
        return self.status == "sending" and self.leased_by == worker and (attempt is None or self.attempts == attempt)

    def let_go(self, status: str) -> None:
        self.status, self.leased_by, self.lease_until, self.attempt_started_at = status, None, None, None


@dataclass
class Hold:
    worker: str | None
    until: float  # epoch seconds
    quiet_until: float = 0.0


@dataclass
class FakeOutbox:
    """Queued messages (`queued`, in order) and, for delivery, the same as rows with claims (`rows`); the tenants
    workers hold and their 429 pauses, as the tenant_rates table keeps them."""

    cards: list[Card] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    queued: list[NewMessage] = field(default_factory=list)
    queued_at: list[datetime] = field(default_factory=list)
    rows: list[Message] = field(default_factory=list)  # row id = position + 1
    holds: dict[str, Hold] = field(default_factory=dict)
    paused: dict[str, float] = field(default_factory=dict)  # bucket → pause end (epoch)
    throttled: int = 0
    unreachable: dict[int, str] = field(default_factory=dict)  # user row → reason

    async def claim(
        self, worker: str, now: datetime, lease: timedelta, limit: int, only: Collection[str] | None = None
    ) -> list[Message]:
        found: list[Message] = []
        for row in self.rows:
            due = row.status == "queued" and (row.next_attempt_at is None or row.next_attempt_at <= now)
            expired = row.status == "sending" and row.attempt_started_at is None and row.lease_until is not None
            expired = expired and row.lease_until is not None and row.lease_until < now
            holder = self.holds.get(row.tenant_id)
            others = holder is not None and holder.worker not in (None, worker) and holder.until > now.timestamp()
            if (due or expired) and (only is None or row.tenant_id in only) and not others and len(found) < limit:
                row.status, row.leased_by, row.lease_until = "sending", worker, now + lease
                row.attempts += 1
                found.append(replace(row))  # a copy, as a query gives: later writes change the table, not it
        return found

    async def unclaim(self, worker: str, message_ids: Collection[int]) -> None:
        for row in self.rows:
            if row.id in message_ids and row.leased_by == worker:
                row.let_go("queued")
                row.attempts -= 1

    async def begin(
        self, worker: str, claims: Collection[tuple[int, int]], now: datetime, lease: timedelta
    ) -> set[int]:
        started = set()
        for message_id, attempt in claims:
            row = self.rows[message_id - 1]
            if row.held_by(worker, attempt):
                row.lease_until, row.attempt_started_at = now + lease, now
                started.add(message_id)
        return started

    async def renew(self, worker: str, claims: Collection[tuple[int, int]], lease_until: datetime) -> set[int]:
        renewed = {m for m, attempt in claims if self.rows[m - 1].held_by(worker, attempt)}
        for message_id in renewed:
            self.rows[message_id - 1].lease_until = lease_until
        return renewed

    async def unmark(self, worker: str, message_id: int, attempt: int) -> bool:
        row = self.rows[message_id - 1]
        if not row.held_by(worker, attempt):
            return False
        row.attempt_started_at = None
        return True

    async def give_back(self, worker: str, message_id: int, attempt: int, due: datetime) -> bool:
        row = self.rows[message_id - 1]
        if row.leased_by != worker or row.attempts != attempt:
            return False
        row.let_go("queued")
        row.next_attempt_at, row.attempts = due, row.attempts - 1
        return True

    async def settle_abandoned(self, now: datetime, *, resend: bool = False) -> list[tuple[int, str | None]]:
        settled = []
        for row in self.rows:
            left = row.status == "sending" and row.attempt_started_at is not None
            if left and row.lease_until is not None and row.lease_until < now:
                unknown = row.operation == "send" and not resend
                row.let_go("unknown" if unknown else "queued")
                if unknown:
                    settled.append((row.id, row.survey_instance_id))
        return settled

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
        row = self.rows[message_id - 1]
        if row.leased_by != worker or row.attempts != attempt:
            return False  # the lease went to another claim: its outcome is not this one's to write
        row.let_go(status)
        row.last_status_code, row.last_error = status_code, error
        if retry_at is not None:
            row.next_attempt_at = retry_at
        if status == "sent":
            row.sent_at, row.activity_id = now, activity_id
        return True

    async def conversation_wait(
        self, conversation_id: str, now: datetime, limits: Sequence[tuple[int, float]]
    ) -> float:
        sent = [r.sent_at for r in self.rows if r.conversation_id == conversation_id and r.sent_at is not None]
        return window_wait(sent, now, limits)

    async def recent_sends(self, conversation_ids: Collection[str], since: datetime) -> dict[str, list[datetime]]:
        found: dict[str, list[datetime]] = {}
        for r in self.rows:
            if r.conversation_id in conversation_ids and r.sent_at is not None and r.sent_at > since:
                found.setdefault(r.conversation_id, []).append(r.sent_at)
        return found

    async def retarget(self, pending_chat: str, conversation_id: str) -> int:
        waiting = [r for r in self.rows if r.conversation_id == pending_chat]
        for row in waiting:
            row.conversation_id = conversation_id
        return len(waiting)

    async def mark_unreachable(self, user_id: int, reason: str, now: datetime) -> None:
        self.unreachable[user_id] = reason

    async def hold_tenants(
        self, worker: str, tenants: Collection[str], now_epoch: float, hold_seconds: float, quiet_seconds: float
    ) -> dict[str, TenantHold]:
        held = {}
        for tenant in sorted(tenants):
            hold = self.holds.get(tenant)
            if hold is not None and hold.worker not in (None, worker) and hold.until > now_epoch:
                continue  # another worker sends to it
            quiet = hold.quiet_until if hold is not None else 0.0
            if hold is not None and hold.worker not in (None, worker):  # an expired holder: wait past its hold
                quiet = max(quiet, hold.until + quiet_seconds)
            self.holds[tenant] = Hold(worker, now_epoch + hold_seconds, quiet)
            held[tenant] = TenantHold(quiet, self.paused.get(tenant, 0.0))
        return held

    async def release_tenants(self, worker: str, quiet_until: dict[str, float]) -> None:
        for tenant, quiet in quiet_until.items():
            if tenant in self.holds and self.holds[tenant].worker == worker:
                self.holds[tenant] = Hold(None, 0.0, quiet)

    async def pauses(self, buckets: Collection[str]) -> dict[str, float]:
        return {b: self.paused[b] for b in buckets if b in self.paused}

    async def pause_tenant(self, tenant_id: str, until_epoch: float, throttled: int = 1) -> None:
        self.paused[tenant_id] = max(self.paused.get(tenant_id, 0.0), until_epoch)
        self.throttled += throttled

    async def sends_since(self, user_ids: Sequence[int], since: datetime) -> dict[int, list[datetime]]:
        found: dict[int, list[datetime]] = {}
        for message, at in zip(self.queued, self.queued_at, strict=True):
            if message.user_id is not None and message.user_id in user_ids and at > since:
                found.setdefault(message.user_id, []).append(at)
        return found

    async def cancel_queued(self, kind: str, reason: str, tenant_id: str | None = None) -> int:
        found = [
            c
            for c in self.cards
            if c.queued and c.id not in self.cancelled and c.kind == kind and tenant_id in (None, c.tenant_id)
        ]
        self.cancelled += [c.id for c in found]
        return len(found)

    async def sent_cards(self, kind: str, tenant_id: str | None = None) -> list[Card]:
        return [
            c
            for c in self.cards
            if not c.queued and c.activity_id and c.kind == kind and tenant_id in (None, c.tenant_id)
        ]

    async def enqueue_many(self, messages: Sequence[NewMessage], now: datetime) -> list[int | None]:
        return [await self.enqueue(m, now) for m in messages]

    async def exists(self, dedupe_key: str) -> bool:
        return any(m.dedupe_key == dedupe_key for m in self.queued)

    async def enqueue(self, message: NewMessage, now: datetime) -> int | None:
        if any(m.dedupe_key == message.dedupe_key for m in self.queued):
            return None  # queued before: the dedupe key keeps it once, as the outbox table's unique key does
        self.queued.append(message)
        self.queued_at.append(now)
        payload = json.dumps({"card": message.card, "summary": message.summary})
        m = message
        self.rows.append(
            Message(
                len(self.rows) + 1,
                m.kind,
                m.tenant_id,
                m.user_id,
                m.conversation_id,
                payload,
                m.survey_instance_id,
                m.operation,
                m.target_activity_id,
                m.quiet_hours,
            )
        )
        return len(self.queued)


@dataclass
class FakeUsage:
    """Events by identity, as the raw table keeps them; active days read from them."""

    events: dict[tuple[str, str, str, datetime], UsageEvent] = field(default_factory=dict)

    async def record(self, events: Sequence[UsageEvent], now: datetime) -> RecordResult:
        stored = 0
        for event in events:
            if event.identity not in self.events:
                self.events[event.identity] = event
                stored += 1
        return RecordResult(stored, len(events) - stored)

    async def active_days(self, tenant_id: str, since: date) -> dict[str, set[date]]:
        found: dict[str, set[date]] = {}
        for e in self.events.values():
            if e.tenant_id == tenant_id and e.day >= since:
                found.setdefault(e.aad_object_id, set()).add(e.day)
        return found

    async def features(self, tenant_id: str, names: Sequence[str]) -> dict[str, dict[str, FeatureUse]]:
        found: dict[str, dict[str, FeatureUse]] = {}
        for e in sorted(self.events.values(), key=lambda e: e.occurred_at):
            if e.tenant_id == tenant_id and e.name in names:
                mine = found.setdefault(e.aad_object_id, {})
                known = mine.get(e.name)
                first = known.first_at if known else e.occurred_at
                mine[e.name] = FeatureUse((known.total if known else 0) + 1, first, e.occurred_at)
        return found

    async def tenant_days(self, tenant_id: str, since: date) -> dict[date, tuple[int, int]]:
        people: dict[date, set[str]] = {}
        events: dict[date, int] = {}
        for e in self.events.values():
            if e.tenant_id == tenant_id and e.day >= since:
                people.setdefault(e.day, set()).add(e.aad_object_id)
                events[e.day] = events.get(e.day, 0) + 1
        return {day: (len(people[day]), events[day]) for day in people}


@dataclass(frozen=True)
class Touch:
    campaign_id: str
    kind: str
    tenant_id: str
    aad_object_id: str
    holdout: bool
    decided_at: datetime


@dataclass
class FakeCampaigns:
    touches: list[Touch] = field(default_factory=list)  # decided earlier: what the campaign report reads
    recorded: list[NewTouch] = field(default_factory=list)  # recorded by a run: touch id = position + 1
    chat_ids: dict[int, str] = field(default_factory=dict)  # user row → live personal conversation
    links: list[tuple[int, int]] = field(default_factory=list)
    stopped: set[tuple[int, str]] = field(default_factory=set)  # (user row, kind)
    renewal_alerts: dict[str, str] = field(default_factory=dict)  # cause → detail

    async def all_touches(self) -> list[Touch]:
        return sorted(self.touches, key=lambda t: t.decided_at)

    async def chats(self, user_ids: Sequence[int]) -> dict[int, str]:
        return {u: self.chat_ids[u] for u in user_ids if u in self.chat_ids}

    async def add_touches(self, touches: Sequence[NewTouch], now: datetime) -> list[int | None]:
        ids: list[int | None] = []
        for touch in touches:
            key = (touch.campaign_id, touch.tenant_id, touch.aad_object_id, touch.step)
            if any((t.campaign_id, t.tenant_id, t.aad_object_id, t.step) == key for t in self.recorded):
                ids.append(None)  # the step was recorded for the person before: the table's unique key
                continue
            self.recorded.append(touch)
            ids.append(len(self.recorded))
        return ids

    async def link_outbox(self, links: Sequence[tuple[int, int]]) -> None:
        self.links += links

    async def touch(self, touch_id: int) -> NewTouch | None:
        return self.recorded[touch_id - 1] if 0 < touch_id <= len(self.recorded) else None

    async def stop(self, user_id: int, kind: str, now: datetime) -> int:
        self.stopped.add((user_id, kind))
        return 0

    async def resume(self, user_id: int, kind: str) -> None:
        self.stopped.discard((user_id, kind))

    async def renewal_alert_keys(self) -> set[str]:
        return set(self.renewal_alerts)

    async def add_renewal_alert(self, tenant_id: str, cause_key: str, detail: str, now: datetime) -> bool:
        if cause_key in self.renewal_alerts:
            return False
        self.renewal_alerts[cause_key] = detail
        return True


@dataclass
class FakeAudience:
    """No audience query: the groups a test hands it (none by default), and the chat owners."""

    found: list[AudienceGroup] = field(default_factory=list)
    owners: set[int] = field(default_factory=set)

    async def groups(
        self, query: AudienceQuery, take: Callable[[list[AudienceGroup]], None], tenant_id: str | None = None
    ) -> None:
        take([g for g in self.found if tenant_id in (None, g.tenant_id)])

    async def chat_owners(self, tenant_id: str | None = None) -> set[int]:
        return set(self.owners)


@dataclass
class FakeActivities:
    seen: set[tuple[str, str]] = field(default_factory=set)  # (conversation, activity id)

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
        if (conversation_id, activity_id) in self.seen:
            return False
        self.seen.add((conversation_id, activity_id))
        return True

    async def forget(self, conversation_id: str, activity_id: str) -> None:
        self.seen.discard((conversation_id, activity_id))


@dataclass
class Account:
    """A tenant as CSMs see it (storage.models.Tenant)."""

    tenant_id: str
    display_name: str | None = None
    renewal_date: date | None = None
    health_score: float | None = None
    at_risk: bool | None = None


@dataclass
class FakeTenants:
    seen: dict[str, datetime] = field(default_factory=dict)  # tenant → last seen
    renewal_dates: dict[str, date] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    health: dict[str, tuple[float, bool]] = field(default_factory=dict)  # the last alert run's score and verdict

    async def get(self, tenant_id: str) -> Account | None:
        if tenant_id not in self.seen:
            return None
        score, at_risk = self.health.get(tenant_id, (None, None))
        return Account(tenant_id, self.names.get(tenant_id), self.renewal_dates.get(tenant_id), score, at_risk)

    async def touch(self, tenant_id: str, now: datetime) -> None:
        self.seen[tenant_id] = now

    async def ids(self) -> list[str]:
        return sorted(self.seen)

    async def renewals(self) -> dict[str, date]:
        return dict(self.renewal_dates)


@dataclass
class Alert:
    """A stored alert (storage.models.Alert)."""

    id: int
    tenant_id: str
    kind: str
    open_key: str | None
    reasons: str
    score: float | None
    survey_instance_id: str | None
    escalate_at: datetime | None
    created_at: datetime
    status: str = "open"
    claimed_by: str | None = None
    snoozed_until: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    escalation_level: int = 0
    updated_at: datetime | None = None


@dataclass(frozen=True)
class AlertEntry:
    alert_id: int
    at: datetime
    actor: str | None
    action: str
    note: str | None


@dataclass
class FakeAlerts:
    """Alerts and their logs; accounts, people, causes and answers read from the other fakes, as from their tables."""

    accounts: FakeTenants
    surveys: FakeSurveys
    assigned: dict[str, list[str]] = field(default_factory=dict)  # tenant → CSMs in escalation order
    rows: list[Alert] = field(default_factory=list)  # alert id = position + 1
    entries: list[AlertEntry] = field(default_factory=list)
    locked: list[int] = field(default_factory=list)

    async def assignments(self) -> dict[str, list[str]]:
        return {tenant: list(csms) for tenant, csms in self.assigned.items()}

    async def tenants(self) -> list[Account]:
        found = [await self.accounts.get(t) for t in sorted(self.accounts.seen)]
        return [a for a in found if a is not None]

    async def installed_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.surveys.people.values():
            if p.installed_at is not None and p.uninstalled_at is None:
                counts[p.tenant_id] = counts.get(p.tenant_id, 0) + 1
        return counts

    async def set_health(self, tenant_id: str, score: float, at_risk: bool, now: datetime) -> None:
        self.accounts.health[tenant_id] = (score, at_risk)

    async def raise_alert(self, alert: NewAlert, now: datetime, escalate_at: datetime | None) -> int | None:
        open_key = alert.open_key or alert.cause_key
        if any(a.open_key == open_key for a in self.rows):
            return None  # the table's unique open key: one alert a cause while it is open
        reasons = json.dumps([phrase_json(r) for r in alert.reasons], ensure_ascii=False)
        row = Alert(
            len(self.rows) + 1,
            alert.tenant_id,
            alert.kind,
            open_key,
            reasons,
            alert.score,
            alert.survey_instance_id,
            escalate_at,
            now,
        )
        self.rows.append(row)
        await self.log(row.id, now, None, "raised")
        return row.id

    async def get(self, alert_id: int, *, lock: bool = False) -> Alert | None:
        if lock:
            self.locked.append(alert_id)
        return self.rows[alert_id - 1] if 0 < alert_id <= len(self.rows) else None

    async def update(self, alert_id: int, now: datetime, **values: object) -> None:
        row = self.rows[alert_id - 1]
        for name, value in values.items():
            if not hasattr(row, name):
                raise AttributeError(f"alerts have no column {name}")
            setattr(row, name, value)
        row.updated_at = now

    async def log(self, alert_id: int, at: datetime, actor: str | None, action: str, note: str | None = None) -> None:
        self.entries.append(AlertEntry(alert_id, at, actor, action, note))

    async def history(self, alert_id: int) -> list[AlertEntry]:
        return [e for e in self.entries if e.alert_id == alert_id]

    async def all(self, *, open_only: bool = False) -> list[Alert]:
        return [a for a in self.rows if not open_only or a.status in ("open", "claimed", "snoozed")]

    async def due_escalations(self, now: datetime) -> list[Alert]:
        return [a for a in self.rows if a.status == "open" and a.escalate_at is not None and a.escalate_at <= now]

    async def wake_snoozed(self, now: datetime) -> list[int]:
        woken = [a for a in self.rows if a.status == "snoozed" and a.snoozed_until and a.snoozed_until <= now]
        for a in woken:
            a.status, a.snoozed_until, a.updated_at = "open", None, now
        return [a.id for a in woken]

    async def pending_causes(self) -> list[Cause]:
        return [c for c in self.surveys.causes if c.status == "pending"]

    async def mark_cause(self, pending_id: int, status: str) -> None:
        next(c for c in self.surveys.causes if c.id == pending_id).status = status

    async def detractor_comment(self, survey_instance_id: str) -> tuple[int, str | None] | None:
        given = [a for (ask, _), a in self.surveys.given.items() if ask == survey_instance_id]
        return (given[0].score, given[0].comment) if given else None


@dataclass
class FakeUnitOfWork:
    surveys: FakeSurveys = field(default_factory=FakeSurveys)
    conversations: FakeConversations = field(default_factory=FakeConversations)
    privacy: FakePrivacy = field(default_factory=FakePrivacy)
    outbox: FakeOutbox = field(default_factory=FakeOutbox)
    usage: FakeUsage = field(default_factory=FakeUsage)
    campaigns: FakeCampaigns = field(default_factory=FakeCampaigns)
    activities: FakeActivities = field(default_factory=FakeActivities)
    audience: FakeAudience = field(default_factory=FakeAudience)
    tenants: FakeTenants = field(default_factory=FakeTenants)
    transactions: int = 0
    read_only: int = 0
    commits: int = 0

    alerts: FakeAlerts = field(init=False)

    def __post_init__(self) -> None:
        self.alerts = FakeAlerts(self.tenants, self.surveys)

    @property
    def users(self) -> FakeUsers:
        return FakeUsers(self.surveys)

    async def __aenter__(self) -> Self:
        self.transactions += 1
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def reads_only(self) -> None:
        self.read_only += 1

    async def commit(self) -> None:
        self.commits += 1
