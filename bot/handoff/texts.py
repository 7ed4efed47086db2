"""What the visitor is told about their ticket by the gateway (the bot's own wording is in domain.yml).

Staff appear to visitors by display name only: never an e-mail address.
"""
from __future__ import annotations

BOT_UNAVAILABLE = (
    "Sorry, the assistant isn't answering right now. Your message is saved, "
    "and a person from our support team will follow up here."
)
BOT_AND_TICKETS_UNAVAILABLE = (
    "Sorry, the assistant isn't answering right now, and I couldn't pass your message to the team "
    "either. Please try again in a few minutes."
)
CONTACT_SAVED = "Thanks! If you're away when the team replies, we'll e-mail you the reply too."
CONTACT_FROM_ACCOUNT = "You're signed in, so the team's replies go to your account's e-mail address."
NO_TICKET_FOR_CONTACT = "There's no open request with the team right now, so there's nothing to e-mail you about."
RATING_REQUEST = "How did we do? Please rate the help you got."
RATING_THANKS = "Thanks for your rating!"


def bot_unavailable_with_ticket(ticket_number: str) -> str:
    """The bot is down and a ticket makes sure a person follows up."""
    return f"{BOT_UNAVAILABLE} Your ticket is {ticket_number}."


def with_team(ticket_number: str) -> str:
    """A message sent while the ticket waits for an agent: it is added to the ticket."""
    return (
        f"This conversation is with our support team now (ticket {ticket_number}). "
        "I've added your message to it, and they'll reply here."
    )


def agent_joined(agent_name: str) -> str:
    return f"{agent_name} joined the conversation."


def resolved(agent_name: str) -> str:
    return f"{agent_name} marked your request as resolved."


def handed_back(agent_name: str) -> str:
    return f"{agent_name} handed the conversation back to the assistant."


BUSY = "One moment please: lots of questions right now. Your message is in, and I'll answer it as soon as it's its turn."
NOT_ANSWERED_NOW = (
    "Sorry, I couldn't answer that just now because of a problem on our side. "
    "Your message is saved: please send it again in a moment."
)
TOO_BUSY = "Lots of questions right now: please send your message again in a few seconds."
NO_ANSWER = "Sorry, I have no answer to that. Could you put it in other words? Or ask for a person."
NOT_RECEIVED = (
    "Sorry, I couldn't receive your message just now because of a problem on our side. "
    "Please send it again in a moment."
)
NOTHING_TO_RATE = "There is nothing to rate here yet: a rating is asked for when the team has helped you."
TEXT_ONLY = "I can only read text messages. Please type your question."


def you_asked(text: str, limit: int = 120) -> str:
    """Before the answer to a message the bot could not answer at the time (after an outage)."""
    shown = text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
    return f"You asked: “{shown}”"


def bot_back(ticket_number: str) -> str:
    """The bot answers again after an outage, and no agent had taken the ticket it opened."""
    return f"The assistant is answering again, so I've closed ticket {ticket_number}. You can still ask for a person."


def due_soon(ticket_number: str, due: str, on_call: bool) -> str:
    """The first-reply due time (``due``, in words) is about to pass and nobody from the team has replied;
    ``on_call``: on-call people are being alerted. Said once per ticket."""
    if on_call:
        then = "I've alerted the on-call team, and the reply will come here in this chat"
    else:
        then = "I can't promise it in time, but the reply will come here in this chat"
    return (
        f"Sorry for the wait: nobody from the team has replied to ticket {ticket_number} yet, and the reply "
        f"is due {due}. {then} (and by e-mail if you've left your address). Anything you add here goes "
        "to the ticket."
    )


def agents_left(ticket_number: str, on_call: bool) -> str:
    """The visitor was promised an agent soon, and now nobody from the team is signed in; said once per ticket
    (instead of the due-time notice)."""
    then = ("I've alerted the on-call team, and the reply will come here in this chat" if on_call
            else "the reply will come here in this chat as soon as someone is back")
    return (
        f"An update on ticket {ticket_number}: nobody from the team is online right now, so I can't keep the "
        f"reply time I gave you. {then} (and by e-mail if you've left your address). Anything you add here "
        "goes to the ticket."
    )


def reopened(agent_name: str, ticket_number: str) -> str:
    """An agent opened the visitor's resolved request again (issue 14): the team has the conversation again."""
    return f"{agent_name} reopened your request ({ticket_number}). This conversation is with our support team again."


def merged(ticket_number: str, into_number: str) -> str:
    """An agent merged this conversation's request into the same customer's other one (issue 14)."""
    return (
        f"Your request {ticket_number} is now handled together with your other request {into_number}: "
        "the team will reply there. Here, the assistant can help you again."
    )
