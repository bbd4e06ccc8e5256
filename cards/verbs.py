"""Action.Execute verbs: one enum shared by the card builders and the handlers. Never parse verbs apart."""

from __future__ import annotations

from enum import StrEnum


class Verb(StrEnum):
    NPS_SUBMIT = "nps.submit"
    NPS_SNOOZE = "nps.snooze"
    NPS_DECLINE = "nps.decline"
    NPS_COMMENT = "nps.comment"
    NPS_EDIT = "nps.edit"
    NPS_REFRESH = "nps.refresh"
    NURTURE_STOP = "nurture.stop"  # "not useful — stop these": opt out of one kind of campaign message
    NURTURE_RESUME = "nurture.resume"  # undo
    ALERT_CLAIM = "alert.claim"
    ALERT_SNOOZE = "alert.snooze"
    ALERT_NOTE = "alert.note"  # log outreach
    ALERT_RESOLVE = "alert.resolve"
    ALERT_REFRESH = "alert.refresh"
