"""One file per revision: ``upgrade()`` and ``downgrade()``, as Alembic writes them."""
