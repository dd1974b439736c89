"""The operator console: a web UI on the admin listener (overview, SKU pages, actions log,
problems, config) with password login, sessions, CSRF and an audit trail of every action."""
