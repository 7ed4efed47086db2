"""Handoff end to end: through the gateway's JSON API and the running bot (trained model, action server, SQLite store).

The test bot's clock is injected (conftest.BOT_CLOCK, a Saturday morning):
business plans get the out-of-hours promise, premium gets 24/7.
"""
from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from bot.handoff.handover import build_handover
from bot.identity import issue_token
from bot.protocol import ClosedHow
from bot.settings import Settings
from bot.store.database import Store
from bot.store.messages import conversation_messages
from bot.store.tickets import close_ticket, get_ticket, tickets_for_conversation
from tests.conftest import BOT_CLOCK
from tests.conversation import buttons, conversation_of, deskmate_payloads, handoff_of, new_sender, talk, texts

VAGUE = ["problem with money and the tv thing", "stuff is weird with the thing"]


def token_for(settings: Settings, email: str) -> str:
    return issue_token(settings.resolved_identity_secret(), email)


def test_anonymous_visitor_asking_for_a_person_gets_a_ticket_and_the_out_of_hours_promise(
    bot_settings: Settings, bot_store: Store,
) -> None:
    sender = new_sender()
    [replies] = talk(bot_settings, ["can i talk to a real person please"], sender=sender)
    handoff = handoff_of(replies)
    assert handoff and handoff["created"] and handoff["priority"] == "normal"
    said = texts(replies)
    assert f"#{handoff['ticket']}" in said
    assert "offline right now" in said and "Monday" in said and "08:00" in said
    [ticket] = tickets_for_conversation(bot_store, conversation_of(sender))
    assert (ticket.reason, ticket.plan, ticket.priority, ticket.status) == ("requested", "anonymous", "normal", "open")
    # The ticket keeps the facts of its opening; the conversation itself is in the store, once.
    assert ticket.handover == {"reason": "requested", "customer": {"anonymous": True}, "identity": "no token"}
    stored = conversation_messages(bot_store, conversation_of(sender))
    assert (stored[0].sender, stored[0].text) == ("visitor", "can i talk to a real person please")
    # Saturday 10:00 -> the clock starts Monday 08:00; 2 business days of 12 h each.
    assert ticket.sla_due_at.weekday() == 1 and ticket.sla_due_at.hour == 20


def test_premium_user_with_problem_gets_high_priority_ticket_and_the_article(bot_settings: Settings, bot_store: Store) -> None:
    sender = new_sender()
    [replies] = talk(
        bot_settings, ["you took my money twice this month"], sender=sender,
        token=token_for(bot_settings, "premium@demo.example"),
    )
    payloads = deskmate_payloads(replies)
    assert payloads[0] == {**payloads[0], "type": "article", "article_id": "double-charge"}
    handoff = handoff_of(replies)
    assert handoff and handoff["priority"] == "high"
    # Nobody has the inbox open: no "an agent will join within 5 minutes" (tests/test_promises.py has one open).
    assert "No agent is online right now" in texts(replies) and "Was this helpful?" not in texts(replies)
    assert handoff["promise"] == "no_agent"
    [ticket] = tickets_for_conversation(bot_store, conversation_of(sender))
    assert ticket.reason == "premium_problem" and ticket.plan == "premium"
    assert ticket.sla_due_at - ticket.created_at == timedelta(minutes=5)
    assert ticket.created_at == BOT_CLOCK
    assert ticket.handover["customer"]["email"] == "premium@demo.example"
    handover = build_handover(ticket, conversation_messages(bot_store, conversation_of(sender)))
    assert handover["articles_shown"] == ["double-charge"]


def test_premium_user_not_understood_gets_a_person_at_once(bot_settings: Settings, bot_store: Store) -> None:
    sender = new_sender()
    [replies] = talk(bot_settings, [VAGUE[0]], sender=sender, token=token_for(bot_settings, "premium@demo.example"))
    handoff = handoff_of(replies)
    assert handoff and handoff["priority"] == "high"
    # The agent is told what happened: unsure once (the plan hands over at the first), not "twice".
    [ticket] = tickets_for_conversation(bot_store, conversation_of(sender))
    handover = build_handover(ticket, conversation_messages(bot_store, conversation_of(sender)))
    assert ticket.reason == "low_confidence" and handover["unsure_in_a_row"] == 1
    assert handover["summary"] == "Bot unsure of one message: a priority plan is handed over at the first"


def test_free_user_not_understood_twice_gets_suggestions_then_a_ticket_with_the_guesses(
    bot_settings: Settings, bot_store: Store,
) -> None:
    sender = new_sender()
    first, second = talk(bot_settings, VAGUE, sender=sender, token=token_for(bot_settings, "free@demo.example"))
    assert handoff_of(first) is None
    assert buttons(first)[-1]["title"] == "Talk to a person"
    handoff = handoff_of(second)
    assert handoff and handoff["priority"] == "normal"
    [ticket] = tickets_for_conversation(bot_store, conversation_of(sender))
    assert ticket.reason == "low_confidence" and ticket.plan == "free"
    # The handover is read from the stored conversation: the bot kept its guesses on its own replies.
    handover = build_handover(ticket, conversation_messages(bot_store, conversation_of(sender)))
    failed = handover["failed_messages"]
    assert [f["text"] for f in failed] == VAGUE
    assert handover["unsure_in_a_row"] == 2 and handover["summary"] == "Bot unsure twice in a row"
    for guesses in failed:
        assert 1 <= len(guesses["intents"]) <= 3 and all(0 <= g["confidence"] <= 1 for g in guesses["intents"])
        assert len(guesses["articles"]) == 3
    shown = [p for p in deskmate_payloads(first) if p["type"] in ("suggestions", "rephrase")][0]["article_ids"]
    assert set(shown) <= set(handover["articles_shown"])
    # The visitor never receives the model's guesses.
    assert not any("guesses" in p for p in deskmate_payloads(first) + deskmate_payloads(second))


def test_standard_user_with_a_good_answer_gets_no_ticket(bot_settings: Settings, bot_store: Store) -> None:
    sender = new_sender()
    [replies] = talk(
        bot_settings, ["you took my money twice this month"], sender=sender,
        token=token_for(bot_settings, "standard@demo.example"),
    )
    assert deskmate_payloads(replies)[0]["article_id"] == "double-charge"
    assert handoff_of(replies) is None and replies[-1]["text"] == "Was this helpful?"
    assert tickets_for_conversation(bot_store, conversation_of(sender)) == []


def test_an_answer_that_did_not_help_then_more_help_opens_a_not_helpful_ticket(bot_settings: Settings, bot_store: Store) -> None:
    sender = new_sender()
    *_, last = talk(
        bot_settings,
        ["where can i find my invoices", '/feedback_not_helpful{"article_id":"invoices"}', "/request_human"],
        sender=sender, token=token_for(bot_settings, "free@demo.example"),
    )
    assert handoff_of(last)
    [ticket] = tickets_for_conversation(bot_store, conversation_of(sender))
    assert ticket.reason == "not_helpful"


def test_premium_answer_that_did_not_help_opens_a_ticket_at_once(bot_settings: Settings) -> None:
    sender = new_sender()
    _, verdict = talk(
        bot_settings,
        ["where can i find my invoices", '/feedback_not_helpful{"article_id":"invoices"}'],
        sender=sender, token=token_for(bot_settings, "premium@demo.example"),
    )
    assert handoff_of(verdict) and handoff_of(verdict)["priority"] == "high"


@pytest.mark.parametrize(
    "make_token",
    [
        lambda secret: issue_token("not-the-shared-secret", "premium@demo.example"),
        lambda secret: issue_token(secret, "premium@demo.example", ttl=timedelta(seconds=-120)),
        lambda secret: jwt.encode({"sub": "premium@demo.example", "exp": 9999999999}, None, algorithm="none"),
        lambda secret: "premium@demo.example",
    ],
    ids=["forged", "expired", "unsigned", "malformed"],
)
def test_a_bad_token_is_anonymous_never_premium(bot_settings: Settings, bot_store: Store, make_token) -> None:
    sender = new_sender()
    token = make_token(bot_settings.resolved_identity_secret())
    [replies] = talk(bot_settings, ["get me a human now"], sender=sender, token=token)
    assert handoff_of(replies)["priority"] == "normal"
    [ticket] = tickets_for_conversation(bot_store, conversation_of(sender))
    assert ticket.plan == "anonymous" and ticket.customer_id is None


def test_asking_twice_never_opens_a_second_ticket_and_the_bot_stays_out_of_the_way(bot_settings: Settings, bot_store: Store) -> None:
    sender = new_sender()
    first, second, third = talk(
        bot_settings, ["i want a human", "hello?? i want a human", "how do i turn on subtitles"], sender=sender
    )
    number = handoff_of(first)["ticket"]
    assert f"#{number}" in texts(second) and "with our support team" in texts(second)
    assert not any(p["type"] == "article" for p in deskmate_payloads(third))
    assert "with our support team" in texts(third)
    assert [t.id for t in tickets_for_conversation(bot_store, conversation_of(sender))] == [number]


def test_the_bot_is_back_once_the_team_resolves_the_ticket(bot_settings: Settings, bot_store: Store) -> None:
    sender = new_sender()
    [first] = talk(bot_settings, ["agent please"], sender=sender)
    # Resolved in the store (as another gateway process would): the store alone says who has the conversation.
    close_ticket(bot_store, handoff_of(first)["ticket"], "agent:maria@lumio.example", BOT_CLOCK, ClosedHow.RESOLVED)
    answered, thanked = talk(bot_settings, ["how do i turn on subtitles", "thanks"], sender=sender)
    assert deskmate_payloads(answered)[0]["article_id"] == "subtitles-audio"
    assert "welcome" in texts(thanked)


def test_premium_customer_sees_plan_price_status_and_renewal(bot_settings: Settings) -> None:
    [replies] = talk(bot_settings, ["what plan am i on"], token=token_for(bot_settings, "premium@demo.example"))
    said = texts(replies)
    assert "Premium" in said and "15.99 USD" in said and "monthly" in said and "active" in said
    assert "next renewal" in said


def test_customer_in_trial_sees_when_the_trial_ends(bot_settings: Settings) -> None:
    [replies] = talk(bot_settings, ["what plan am i on"], token=token_for(bot_settings, "standard@demo.example"))
    assert "free trial ends" in texts(replies)


def test_anonymous_visitor_asking_for_their_subscription_is_told_to_sign_in(bot_settings: Settings) -> None:
    [replies] = talk(bot_settings, ["what plan am i on"])
    assert "signed in" in texts(replies)


def test_a_token_for_a_customer_that_no_longer_exists_is_told_plainly(bot_settings: Settings) -> None:
    [replies] = talk(bot_settings, ["what plan am i on"], token=token_for(bot_settings, "deleted@demo.example"))
    assert "couldn't find your account" in texts(replies) and "signed in" in texts(replies)


def test_ticket_status_lists_the_customers_tickets(bot_settings: Settings, bot_store: Store) -> None:
    token = token_for(bot_settings, "standard@demo.example")
    [opened] = talk(bot_settings, ["let me speak to an agent"], token=token)
    number = handoff_of(opened)["ticket"]
    [replies] = talk(bot_settings, ["any news on my ticket"], token=token)
    assert f"#{number}: open" in texts(replies)
    assert get_ticket(bot_store, number).plan == "standard"
