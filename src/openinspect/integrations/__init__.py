"""Integrations with outside services: each inbound one is ``verify → parse → commands``, each
outbound one a consumer of the global event feed (``sessions.feed``)."""
