"""The Teams app package IT admins install: icons, manifest from the template, validation, zip."""
