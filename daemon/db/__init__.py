"""Persistence: SQLModel tables, the async engine wrapper and Alembic migrations."""
