"""A wire-faithful mock of the Walmart Marketplace (US) API over the simulated market."""

from connectors.mock.walmart.app import make_app, start
from connectors.mock.walmart.state import WalmartMockState

__all__ = ["WalmartMockState", "make_app", "start"]
