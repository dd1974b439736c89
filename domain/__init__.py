"""The leaf of repricerd: domain types, errors and the clock that every other package shares.

It imports nothing of ours (``make lint`` checks it): ``strategies`` and ``connectors`` build on
it alone, and ``daemon`` composes them.
"""
