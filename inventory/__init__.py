"""Inventory intelligence, the pure core: demand forecast, restock, inventory health, storage fees.

Like ``strategies``, it imports only ``domain``, its own modules and numpy; the daemon feeds it
daily aggregates and turns its answers into tables, alerts and reports.
"""
