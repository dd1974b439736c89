"""What every mock marketplace shares: control routes, serving; each mock keeps its own API."""
