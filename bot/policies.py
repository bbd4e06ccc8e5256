"""The one place settings become the objects each part of Nurture takes: policies and use-case configs.

Settings (bot.config) only read and check the environment; what a setting means for asking, tenants, hosts,
delivery, campaigns, alerts and retention is decided here, once, for the server and the command line alike.
"""

from __future__ import annotations

from datetime import time, timedelta

from bot.campaigns_file import load_campaigns
from bot.config import Settings
from bot.engagement.asking import AskPolicy
from bot.engagement.campaigns import CampaignSet
from bot.engagement.delivery import RetryPolicy
from bot.security.service_urls import ServiceUrlPolicy
from bot.security.tenants import TenantPolicy
from bot.usecases.alerts.accounts import AlertConfig
from bot.usecases.campaigns import CampaignConfig
from bot.usecases.delivery.worker import DeliveryConfig
from bot.usecases.privacy import Retention
from bot.usecases.surveys import SurveyConfig


def tenant_policy(settings: Settings) -> TenantPolicy:
    """NURTURE_ALLOWED_TENANTS: which tenants' activities and events are accepted."""
    return TenantPolicy.from_setting(settings.allowed_tenants, dev_mode=settings.dev_mode)


def service_url_policy(settings: Settings) -> ServiceUrlPolicy:
    """NURTURE_SERVICE_URL_HOSTS: where the bot may send its outbound token."""
    return ServiceUrlPolicy.from_setting(settings.service_url_hosts, dev_mode=settings.dev_mode)


def ask_policy(settings: Settings) -> AskPolicy:
    """When a person may be asked or messaged: re-survey interval, sampling, snooze, quiet hours, weekends."""
    start, _, end = settings.quiet_hours.partition("-")
    return AskPolicy(
        resurvey_days=settings.nps_resurvey_days,
        sample_percent=settings.nps_sample_percent,
        snooze_days=settings.nps_snooze_days,
        quiet_start=time(int(start)),
        quiet_end=time(int(end)),
        skip_weekends=settings.skip_weekends,
    )


def survey_config(settings: Settings) -> SurveyConfig:
    return SurveyConfig(
        product_name=settings.product_name,
        policy=ask_policy(settings),
        edit_grace=timedelta(hours=settings.nps_edit_grace_hours),
        expiry=timedelta(days=settings.nps_expiry_days),
        review_url=settings.review_url or None,
        referral_url=settings.referral_url or None,
        opening=settings.open_chats,
    )


def campaign_config(settings: Settings, campaigns: CampaignSet | None = None) -> CampaignConfig:
    return CampaignConfig(
        campaigns=campaigns if campaigns is not None else load_campaigns(settings.campaigns),
        policy=ask_policy(settings),
        product_name=settings.product_name,
        opening=settings.open_chats,
    )


def alert_config(settings: Settings, campaigns: CampaignSet) -> AlertConfig:
    return AlertConfig(
        health=campaigns.health.policy(settings.nps_min_answers),
        settings=campaigns.alerts,
        global_csms=frozenset(i.lower() for i in settings.csm_ids),
        value_event=campaigns.value_event,
    )


def delivery_config(settings: Settings) -> DeliveryConfig:
    return DeliveryConfig(
        tenant_rate_per_second=settings.tenant_rate_per_second,
        tenant_limit_per_second=settings.tenant_limit_per_second,
        tenants_per_worker=settings.tenants_per_worker,
        lease=timedelta(seconds=settings.delivery_lease_seconds),
        retry=RetryPolicy(resend_unknown=settings.resend_unknown),
        quiet=ask_policy(settings),
    )


def retention(settings: Settings) -> Retention:
    return Retention(
        settings.comment_retention_days, settings.activity_log_retention_days, settings.usage_retention_days
    )
