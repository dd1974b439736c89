"""A wire-faithful mock of the Amazon Selling Partner API over the simulated market."""

from connectors.mock.amazon.app import make_app, start
from connectors.mock.amazon.state import AmazonMockState

__all__ = ["AmazonMockState", "make_app", "start"]
