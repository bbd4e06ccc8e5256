"""Who may be messaged on Nurture's initiative, and the pending-chat ids messages carry until a chat is opened."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, Settings
from bot.engagement.reach import ChatOpening, ReachFacts, pending_chat, pending_user, reachable

WITH_CHAT = ReachFacts(has_chat=True, installed=True, uninstalled=False, refused=False, tenant_anchored=True)
NO_CHAT = ReachFacts(has_chat=False, installed=False, uninstalled=False, refused=False, tenant_anchored=True)


@pytest.mark.parametrize("opening", list(ChatOpening))
def test_a_person_with_a_chat_is_reachable_whatever_the_setting(opening: ChatOpening) -> None:
    assert reachable(WITH_CHAT, opening)


@pytest.mark.parametrize(
    ("facts", "opening", "expected"),
    [
        (NO_CHAT, ChatOpening.OFF, False),
        (NO_CHAT, ChatOpening.CREATE, True),
        (NO_CHAT, ChatOpening.INSTALL, True),
        (ReachFacts(False, False, False, False, tenant_anchored=False), ChatOpening.INSTALL, False),  # no bot there
        (ReachFacts(False, True, uninstalled=True, refused=False, tenant_anchored=True), ChatOpening.INSTALL, False),
        (ReachFacts(False, False, False, refused=True, tenant_anchored=True), ChatOpening.CREATE, False),
        (
            ReachFacts(True, installed=False, uninstalled=False, refused=False, tenant_anchored=True),
            ChatOpening.CREATE,
            False,
        ),
        (ReachFacts(True, True, False, refused=True, tenant_anchored=True), ChatOpening.CREATE, False),
    ],
)
def test_people_without_a_chat(facts: ReachFacts, opening: ChatOpening, expected: bool) -> None:
    assert reachable(facts, opening) is expected


def test_pending_chat_ids_round_trip_and_real_ids_are_not_pending() -> None:
    assert pending_user(pending_chat(42)) == 42
    assert pending_user("a:1Xyz-personal") is None
    assert pending_user("19:abc@unq.gbl.spaces") is None
    assert pending_user("pending-chat:not-a-number") is None


def test_open_chats_setting_is_read_in_any_case_and_install_needs_the_app_secret() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, open_chats="INSTALL", app_id="a", app_type="UserAssignedMSI", app_tenant_id="t"
    )
    assert settings.open_chats is ChatOpening.INSTALL
    with pytest.raises(ConfigError, match="NURTURE_OPEN_CHATS=install needs MicrosoftAppPassword"):
        settings.check_bot_identity()
    assert Settings(_env_file=None).open_chats is ChatOpening.CREATE  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="https"):
        Settings(_env_file=None, graph_url="http://graph.example/v1.0")  # type: ignore[call-arg]
