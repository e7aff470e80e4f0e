"""``sys.info``: who the router thinks you are."""

from components.system.session import SystemComponent

__all__ = ["SystemComponent"]
