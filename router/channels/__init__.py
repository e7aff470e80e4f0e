"""
Channels: topics whose publications the router keeps (history, with gap-free recovery) and whose
subscribers it lists (presence). See docs/channels.md.

- :mod:`router.channels.index`: which channel a topic belongs to;
- :mod:`router.channels.history` and :mod:`router.channels.db`: history in memory and in SQLite;
- :mod:`router.channels.presence`: members per topic;
- :mod:`router.channels.access`: who may use the channel URIs (decided in :mod:`router.seam.authorization`);
- :mod:`router.channels.service`: the router component serving ``switchboard.history.*`` and
  ``switchboard.presence.*``, attached to the realm through :mod:`router.seam.channels`.
"""
