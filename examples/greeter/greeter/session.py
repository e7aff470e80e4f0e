"""The WAMP glue: the greeter's procedures and its event, hosted by Switchboard in realm ``greeter``.

| URI | what | who (switchboard.json) |
|---|---|---|
| ``greeter.greet(name)`` | ``"Hello, <name>"``; publishes ``greeter.greeted`` | every role |
| ``greeter.count()`` | greetings since the last reset | every role |
| ``greeter.reset()`` | sets the count to zero, returns the count it had | ``admin`` only |
| ``greeter.greeted`` (topic) | ``{"name", "greeting", "by"}``, ``by`` the caller's authid | every role subscribes |
"""

from __future__ import annotations

from typing import Any

from autobahn.wamp.types import CallDetails, PublishOptions
from router.component import ComponentSession, invalid_argument, procedure

from greeter.core import Greetings

GREET = "greeter.greet"
COUNT = "greeter.count"
RESET = "greeter.reset"
GREETED = "greeter.greeted"


class GreeterComponent(ComponentSession):
    """Greets callers by name and tells every subscriber of ``greeter.greeted`` who was greeted, by whom."""

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.greetings = Greetings()

    async def onJoin(self, details: Any) -> None:
        await self.register(self)

    @procedure(GREET)
    async def greet(self, name: object, *, details: CallDetails) -> str:
        try:
            greeting = self.greetings.greet(name)
        except ValueError as e:
            raise invalid_argument(GREET, str(e)) from None
        # Acknowledged, so a publish the component's role may not make fails the call instead of vanishing.
        event = {"name": name, "greeting": greeting, "by": details.caller_authid}
        await self.publish(GREETED, event, options=PublishOptions(acknowledge=True))
        return greeting

    @procedure(COUNT)
    def count(self) -> int:
        return self.greetings.count

    @procedure(RESET)
    def reset(self) -> int:
        return self.greetings.reset()
