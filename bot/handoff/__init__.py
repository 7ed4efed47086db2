"""Human handoff: when the bot steps aside, the ticket's life, and what the agent and the visitor are told.

- ``policy``: the tenant's support policy (kb/support_policy.yml): hours, priorities, first-reply targets;
- ``rules``: ``should_open_ticket``, the one decision every escalation path goes through;
- ``service``: who the visitor is, and opening the ticket (action server and gateway alike);
- ``handover``: what the agent reads, built from the stored conversation;
- ``lifecycle``: claim, agent reply, resolve, hand back, rate (one transaction each, then delivery);
- ``messages`` (the bot's ticket messages, wording in domain.yml) and ``texts`` (the gateway's).
"""
