"""Delivery of queued cards to Teams, within Teams' limits, never twice.

- worker: DeliveryWorker claims due outbox rows and delivers each one;
- pacing: Teams' per-conversation windows and each held tenant's rate, pauses and hold (TenantPacer);
- chats: opening a person's chat first when they have none (ChatOpenings);
- outcomes: marking a row as leaving, then writing its outcome, many rows a transaction (OutcomeWriter);
- ports: what delivery needs from Teams and Graph (MessageSender, ChatOpener, AppInstaller).
"""
