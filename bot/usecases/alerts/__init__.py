"""Customer success: account health, churn-risk alerts for CSMs, their card actions, commands and digests.

- accounts: who may see which account, each account's health, the alert card (what the others share);
- run: one alert run (raise, deliver, escalate), then the digests (digests);
- actions: claim, snooze, log outreach, resolve, refresh on an alert card;
- views: the cards of the CSM commands (`at risk`, `renewals`, `account X`).
Free of botbuilder.
"""
