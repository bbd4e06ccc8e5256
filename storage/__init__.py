"""SQL storage: typed models, engine and unit of work, repositories, Alembic migrations.

Only pseudonymous identifiers are stored (AAD object ids, tenant ids, Teams conversation ids):
no names, e-mails or UPNs.
"""
