"""End to end through the gateway's JSON API and the running bot (Rasa server + action server, trained model)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Dict

import pytest

from bot.lead.article_edits import ArticleDraft, save_article
from bot.lead.misses import collect_misses
from bot.settings import Settings
from bot.store.database import Store
from bot.store.feedback import feedback_for
from bot.store.models import Message
from tests.conversation import buttons, conversation_of, deskmate_payloads, handoff_of, new_sender, talk


def test_a_clear_question_gets_its_article_tagged_with_its_id_then_was_this_helpful(bot_settings: Settings) -> None:
    [replies] = talk(bot_settings, ["you took my money twice this month"])
    assert {"type": "article", "article_id": "double-charge"}.items() <= deskmate_payloads(replies)[0].items()
    assert replies[-1]["text"] == "Was this helpful?"
    # The article answers a problem (problem: true in kb/): a person is one click away.
    assert [b["title"] for b in buttons(replies)] == ["Yes", "No", "Talk to a person"]
    assert all("double-charge" in b["payload"] for b in buttons(replies)[:2])


def test_yes_to_was_this_helpful_is_recorded_in_the_store(bot_settings: Settings, bot_store: Store) -> None:
    sender = new_sender()
    first, second = talk(bot_settings, ["how do i turn on subtitles", "yes"], sender=sender)
    article = deskmate_payloads(first)[0]["article_id"]
    assert "helped" in second[0]["text"]
    rows = feedback_for(bot_store, conversation_of(sender))
    assert [(r.article_id, r.helpful) for r in rows] == [(article, True)]


def test_thanks_for_an_answer_is_recorded_as_helpful_and_thanked_back_once(bot_settings: Settings, bot_store: Store) -> None:
    sender = new_sender()
    first, second, third = talk(bot_settings, ["how do i turn on subtitles", "cheers, that sorted it", "thanks"], sender=sender)
    article = deskmate_payloads(first)[0]["article_id"]
    assert "welcome" in second[0]["text"] and "helped" in second[0]["text"]
    assert "welcome" in third[0]["text"]  # the answer's verdict is in: later thanks are only thanks
    rows = feedback_for(bot_store, conversation_of(sender))
    assert [(r.article_id, r.helpful) for r in rows] == [(article, True)]


def test_sarcastic_or_resigned_thanks_for_an_answer_is_not_helpful(bot_settings: Settings, bot_store: Store) -> None:
    for text in ("gee, thanks for absolutely nothing", "fine, thanks anyway"):
        sender = new_sender()
        first, second = talk(bot_settings, ["how do i turn on subtitles", text], sender=sender)
        article = deskmate_payloads(first)[0]["article_id"]
        assert "glad" not in second[0]["text"], text
        rows = feedback_for(bot_store, conversation_of(sender))
        assert [(r.article_id, r.helpful) for r in rows] == [(article, False)], text


def test_thanks_in_another_language_after_an_answer_is_no_helpful_verdict(bot_settings: Settings, bot_store: Store) -> None:
    # The bot reads English: "thanks for nothing" in another language must not count as helpful
    # (a break-it pass found 32 of 35 such counted when thanks in other languages were trained as thanks).
    for text in ("danke für nichts", "gracias por nada, inútil"):
        sender = new_sender()
        first, second = talk(bot_settings, ["how do i turn on subtitles", text], sender=sender)
        assert deskmate_payloads(first)[0]["article_id"]
        assert "glad" not in second[0]["text"], text
        assert True not in [r.helpful for r in feedback_for(bot_store, conversation_of(sender))], text


def test_asking_when_a_person_is_around_gets_the_support_hours_not_a_ticket(bot_settings: Settings) -> None:
    for text in ("could somebody from the team chat with me on a sunday?", "from what time in the morning can i reach a human"):
        [replies] = talk(bot_settings, [text])
        assert [p.get("article_id") for p in deskmate_payloads(replies)][:1] == ["support-hours"], text
        assert handoff_of(replies) is None, text
    [replies] = talk(bot_settings, ["can somebody from the team chat with me now please"])
    assert handoff_of(replies), "a person asked for now is still a person"


def test_ok_that_goes_on_to_ask_for_a_person_after_an_answer_is_the_request_not_a_verdict(
    bot_settings: Settings, bot_store: Store,
) -> None:
    # helper-29's case, and one of ours; both were "affirm" at 0.95-0.98 before, so a helpful verdict and no person.
    for text in ("ok but I need one right now", "yeah ok but i want a person"):
        sender = new_sender()
        first, second = talk(bot_settings, ["how do i turn on subtitles", text], sender=sender)
        assert deskmate_payloads(first)[0]["article_id"]
        assert handoff_of(second), text
        assert True not in [r.helpful for r in feedback_for(bot_store, conversation_of(sender))], text


def test_thanks_with_no_answer_before_it_records_nothing(bot_settings: Settings, bot_store: Store) -> None:
    sender = new_sender()
    [replies] = talk(bot_settings, ["thank you"], sender=sender)
    assert "welcome" in replies[0]["text"]
    assert feedback_for(bot_store, conversation_of(sender)) == []


def test_not_helpful_is_recorded_and_offers_related_articles_and_a_person(bot_settings: Settings, bot_store: Store) -> None:
    sender = new_sender()
    answer, _ = talk(bot_settings, ["where can i find my invoices", '/feedback_not_helpful{"article_id":"invoices"}'], sender=sender)
    assert deskmate_payloads(answer)[0]["article_id"] == "invoices"
    rows = feedback_for(bot_store, conversation_of(sender))
    assert [(r.article_id, r.helpful) for r in rows] == [("invoices", False)]


def test_pressing_a_suggested_article_answers_it(bot_settings: Settings) -> None:
    sender = new_sender()
    [offered] = talk(bot_settings, ["problem with money and the tv thing"], sender=sender)
    pressed = buttons(offered)[0]
    [replies] = talk(bot_settings, [pressed["payload"]], sender=sender)
    assert deskmate_payloads(replies)[0]["article_id"] == pressed["payload"].split('"article_id":"')[1].split('"')[0]


def test_a_vague_question_offers_up_to_three_articles_and_a_person(bot_settings: Settings) -> None:
    [replies] = talk(bot_settings, ["problem with money and the tv thing"])
    assert not any(p["type"] == "article" for p in deskmate_payloads(replies))
    titles = [b["title"] for b in buttons(replies)]
    assert titles[-1] == "Talk to a person" and 2 <= len(titles) <= 4
    assert all(b["payload"].startswith('/faq{"article_id":') for b in buttons(replies)[:-1])


def test_gibberish_asks_to_rephrase_and_offers_a_person(bot_settings: Settings) -> None:
    [replies] = talk(bot_settings, ["qwzx vbnm plok"])
    assert "other words" in replies[0]["text"]
    assert [b["title"] for b in buttons(replies)] == ["Talk to a person"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "empty"),
        ("refund " * 1500, "too long"),
        ("😀🎉👍", "couldn't read"),
        ("\x00\x07\x1b\x7f", "empty"),  # control characters are removed at the door
        ("<script>alert('x')</script><img src=x onerror=alert(1)>", None),
    ],
    ids=["empty", "10000-chars", "emoji-only", "control-chars", "html-script"],
)
def test_bad_input_gets_a_clear_answer_and_is_never_echoed(bot_settings: Settings, text: str, expected: str) -> None:
    [replies] = talk(bot_settings, [text])
    assert replies, "the bot must always answer"
    all_text = " ".join(r.get("text") or "" for r in replies)
    if expected:
        assert expected in all_text
    assert "<script>" not in all_text and "onerror" not in all_text
    assert not any(p["type"] == "article" for p in deskmate_payloads(replies)) or expected is None


def test_an_edited_answer_is_live_without_retraining(bot_settings: Settings, bot_kb_dir: Path) -> None:
    path = next(bot_kb_dir.glob("**/gift-cards-promo.md"))
    original = path.read_text()
    try:
        head, _, body = original.partition("\n---\n")
        path.write_text(f"{head}\n---\nRedeem it on the redeem page (edited answer).\n")
        later = time.time() + 2
        os.utime(path, (later, later))
        [replies] = talk(bot_settings, ["redeem gift card"])
        assert replies[0]["text"] == "Redeem it on the redeem page (edited answer)."
    finally:
        path.write_text(original)


MONEY_BACK_QUESTIONS = (
    "money back guarantee", "is there a money back guarantee", "do you have a satisfaction guarantee",
    "90 day money back guarantee", "guarantee on new plans", "what does the guarantee cover",
    "how long is the money back guarantee", "satisfaction guaranteed or money back", "claim the guarantee",
    "does the guarantee apply to premium",
)


def test_an_article_saved_after_the_model_was_trained_answers_nobody_until_a_checked_model_knows_it(
    bot_settings: Settings, bot_kb_dir: Path
) -> None:
    # The lead console's article editor writes it, checked and atomic, as a lead would.
    saved = save_article(
        bot_kb_dir,
        ArticleDraft(
            id="money-back-guarantee", title="Money back guarantee", category="billing",
            questions=MONEY_BACK_QUESTIONS, related=("refund-policy",), problem=False,
            body="Every new plan has a 90-day money back guarantee (a new article, never retrained or checked).",
        ),
        version=None,
    )
    try:
        later = time.time() + 2
        os.utime(saved.path, (later, later))
        time.sleep(0.5)  # past the kb/ re-check interval
        for question in ("is there a money back guarantee", "what does the satisfaction guarantee cover"):
            [replies] = talk(bot_settings, [question])
            payloads = deskmate_payloads(replies)
            # Neither answered nor offered: the serving model was trained and checked without it.
            assert not any(p.get("article_id") == "money-back-guarantee" for p in payloads), payloads
            assert "money-back-guarantee" not in str(buttons(replies))
            assert "90-day" not in " ".join(r.get("text") or "" for r in replies)
        # A button press naming it (a forged payload) does not reach it either.
        [replies] = talk(bot_settings, ['/faq{"article_id": "money-back-guarantee"}'])
        assert "90-day" not in " ".join(r.get("text") or "" for r in replies)
    finally:
        saved.path.unlink()


def test_a_question_about_another_companys_product_gets_no_article(bot_settings: Settings) -> None:
    # The words that pick an article (cancel, refund, password) are every company's; the name is not.
    for question, product in (("how do i cancel my disney plus subscription", "Disney Plus"),
                              ("steam refund policy for a game", "Steam")):
        [replies] = talk(bot_settings, [question])
        assert not any(p.get("type") == "article" for p in deskmate_payloads(replies)), replies
        assert product in replies[0]["text"] and "I can only help with Lumio" in replies[0]["text"]
    # Naming the service too is a question about it.
    [replies] = talk(bot_settings, ["i want to cancel lumio, i already cancelled my disney plus"])
    assert "I can only help" not in " ".join(r.get("text") or "" for r in replies)


def test_an_unrelated_ask_is_refused_unless_it_names_the_service(bot_settings: Settings) -> None:
    refusal = "I can only help with questions about your subscription"
    [replies] = talk(bot_settings, ["what's the weather like tomorrow"])
    assert refusal in replies[0]["text"]
    # The same kind of ask naming Lumio is read as a question about Lumio: answered or offered articles.
    [replies] = talk(bot_settings, ["what's the weather like tomorrow, lumio"])
    assert refusal not in " ".join(r.get("text") or "" for r in replies)


def test_a_refusal_is_stored_as_one_and_its_question_listed_for_the_leads(
    bot_settings: Settings, bot_store: Store
) -> None:
    # What the visitor reads is unchanged (domain.yml); the payload only names the refusal for programs.
    plain = ("Sorry, I can only help with questions about your subscription, your account and watching. "
             "Is there something there I can do for you?")
    disney = ("That sounds like a question about Disney Plus, and I can only help with Lumio: your subscription, "
              "your account and watching. Is there something there I can do for you?")
    asked: Dict[str, str] = {}  # question -> its conversation
    for question, expected in (("what's the weather like tomorrow", ({"type": "out_of_scope"}, plain)),
                               ("how do i cancel my disney plus subscription",
                                ({"type": "other_product", "product": "Disney Plus"}, disney)),
                               ("how do I cancel my gym membership", None)):
        sender = new_sender()
        [replies] = talk(bot_settings, [question], sender=sender)
        [payload] = deskmate_payloads(replies)
        if expected is None:  # the model reads it as out of scope, or the product list names the gym: either refuses
            assert payload["type"] in ("out_of_scope", "other_product"), replies
        else:
            assert (payload, [r["text"] for r in replies]) == (expected[0], [expected[1]])
        with bot_store.session() as session:
            stored = [(m.sender, m.text, m.kind) for m in session.query(Message)
                      .filter(Message.conversation_id == conversation_of(sender)).order_by(Message.id)]
        assert stored == [("visitor", question, None), ("bot", replies[0]["text"], payload["type"])]
        asked[question] = conversation_of(sender)
    # Each question is in the leads' misses, under its own source.
    missed = {m.conversation_id: m for m in collect_misses(bot_store) if m.conversation_id in asked.values()}
    assert {question: missed[conversation].sources for question, conversation in asked.items()} == {
        question: ("refused",) for question in asked}
