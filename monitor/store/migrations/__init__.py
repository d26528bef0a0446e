"""Alembic migrations of the store; run by ``monitor.store.migrate``, never imported."""
