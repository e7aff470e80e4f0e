"""
Router-to-router links (Crossbar's rlinks) that behave like one router: what crosses a link arrives as it
would inside one worker.

Crossbar 26.10.1's rlink (``crossbar/worker/rlink.py``) is a pair of sessions per link: the *local leg*
(``RLinkLocalSession``, embedded in the worker that runs the link, authrole ``trusted``) and the *remote
leg* (``RLinkRemoteSession``, a client of the other worker, authrole :data:`router.workers.LINK_ROLE`). Each
leg watches its router's ``wamp.subscription.on_create``/``wamp.registration.on_create`` meta events and
subscribes/registers the same URI through the other leg. As shipped that is wrong in most of what it does:
a callee's error becomes a ``null`` result; a caller or publisher that is not disclosed cannot be
forwarded (the call fails, the event is dropped) and the forwarded ``authid`` is the role; pattern
registrations abort the link and pattern subscriptions/registrations are never forwarded; progressive
results are dropped; ``exclude``/``eligible`` (and ``_authid``/``_authrole``) are ignored; the two legs
keep each other's forwarded subscriptions alive for ever; a second callee of a shared registration on
another worker is never forwarded, and forwarded calls can come back; a forwarded event gets a new
publication id.

**How it works here.** Every router worker runs this module (the full mesh of :mod:`router.workers`:
whatever crosses, crosses one link once).

- *Interest, in the router.* ``UriObservationMap.add_observer``/``drop_observer`` are wrapped so each router
  with links counts, per subscription and registration, its observers that are not links (the realm store
  counts: it keeps history). When a count goes 0 -> 1 or 1 -> 0 the router tells its links: the local legs
  it hosts directly, the remote legs of other workers by an EVENT on :data:`INTEREST_TOPIC` (which they
  subscribe; the first EVENT is the full state). A link's own subscriptions never count, so nothing keeps
  anything alive but a real subscriber or callee. ``wamp.*``/``crossbar.*`` URIs never count.
- *Mirroring, in the link.* ``BridgeSession._setup_event_forwarding`` and ``_setup_invocation_forwarding``
  are replaced by a :class:`Mirror` per leg that subscribes/registers, through the other leg, exactly what
  its router is interested in (same URI, ``match`` and ``invoke``), and undoes it when the interest goes.
  A received event is published, a received invocation called, through its own leg with one
  ``forward_for`` entry that carries the original identity (:data:`MARK`). A call's error, arguments and
  progressive results are passed back as they are.
- *What a link receives* (``Router.send``): an EVENT to a link carries the publisher's real identity,
  whether it was disclosed, the publication id and the publish's ``exclude``/``eligible`` options; an
  INVOCATION to a link carries the caller's identity and whether it was disclosed. Events to links are sent
  by ``Broker._filter_publish_receivers`` whatever the ``eligible``/``exclude`` options say (the worker on the
  other side applies them to its own sessions), in the first dispatch chunk.
- *What a link sends* (``Router.process``): a PUBLISH from a link with :data:`MARK` is delivered by
  :func:`deliver` to this router's subscribers only (never to a link: no loops, no duplicates) with the
  original publication id, the original publisher if it was disclosed and the options applied here. A CALL
  from a link goes to a callee that is not a link (``Dealer._call``), with the original caller if it was
  disclosed; ``forward_for`` never reaches a client.

Nothing of this runs in a worker without links: :func:`install` replaces the two ``BridgeSession`` methods
and wraps ``Router.attach``/``Router.detach``; the message hooks are put in when the first link session
attaches to a router of this process.
"""

from __future__ import annotations

import os

from router.patches import Patches
from router.seam.rlinks import legs, routing
from router.seam.rlinks.legs import Mirror
from router.seam.rlinks.routing import INTEREST_TOPIC, MARK, Interest, deliver, interest_of

__all__ = [
    "INTEREST_TOPIC",
    "MARK",
    "RELIED_ON",
    "SIGNATURES",
    "SWITCH_ENV",
    "Interest",
    "Mirror",
    "deliver",
    "install",
    "interest_of",
    "uninstall",
]

#: Crossbar/autobahn names the package relies on: :mod:`~router.seam.rlinks.routing`'s and
#: :mod:`~router.seam.rlinks.legs`' (``tests/unit/test_seam_canary.py`` checks them).
RELIED_ON = routing.RELIED_ON + legs.RELIED_ON
#: What the package wraps or replaces: the parameters each is expected to take.
SIGNATURES = {**routing.SIGNATURES, **legs.SIGNATURES}

#: Set to ``0`` to leave Crossbar's rlinks as shipped (to compare; tests/integration/test_rlinks.py).
SWITCH_ENV = "SWITCHBOARD_RLINKS"

_patches = Patches()


def install() -> None:
    """Replace the rlink's forwarding and watch for link sessions (idempotent); nothing with
    ``SWITCHBOARD_RLINKS=0`` (Crossbar's own rlinks, to compare)."""
    if _patches or os.environ.get(SWITCH_ENV) == "0":
        return
    from crossbar.router.router import Router
    from crossbar.worker.rlink import BridgeSession

    routing.LEGS[:] = [BridgeSession]
    _patches.replace(BridgeSession, "onMessage", legs.on_message)
    _patches.replace(BridgeSession, "_setup_event_forwarding", legs.setup_event_forwarding)
    _patches.replace(BridgeSession, "_setup_invocation_forwarding", legs.setup_invocation_forwarding)
    _patches.wrap(Router, "attach", routing.make_attach)
    _patches.wrap(Router, "detach", routing.make_detach)


def uninstall() -> None:
    """Put back everything the package replaced (for tests)."""
    routing.uninstall()
    _patches.undo()
