"""Outbound credentials for tests: a fixed bearer token instead of msal (which refuses non-HTTPS authorities)."""

from __future__ import annotations

from botframework.connector.auth import AppCredentials, ServiceClientCredentialsFactory

OUTBOUND_TOKEN = "test-outbound-token"


class FixedTokenCredentials(AppCredentials):
    def __init__(self, app_id: str) -> None:
        super().__init__(app_id=app_id)
        self.microsoft_app_id = app_id

    def get_access_token(self, force_refresh: bool = False) -> str:
        return OUTBOUND_TOKEN


class FixedTokenCredentialsFactory(ServiceClientCredentialsFactory):
    def __init__(self, app_id: str) -> None:
        self.app_id = app_id

    async def is_valid_app_id(self, app_id: str) -> bool:
        return app_id == self.app_id

    async def is_authentication_disabled(self) -> bool:
        return False

    async def create_credentials(self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool):
        if app_id != self.app_id:
            raise PermissionError(f"unexpected app id {app_id!r}")
        return FixedTokenCredentials(app_id)
