"""The egress proxy: a box's only way to the network, through an allow-list.

- :mod:`.allowlist`: the entries (``host``, ``*.suffix``, ``host:port``, IP literals) and how a
  request's host and port are matched against them;
- :mod:`.addresses`: which resolved addresses are public, and the resolver seam;
- :mod:`.proxy`: the HTTP proxy itself (``CONNECT`` and absolute-URI requests), run over a byte
  tunnel the box's runtime opens on the bridge (:mod:`openinspect.runtime.egressforward`).

The authority that says which box a token is and what its session's repo may reach, and that
records every request, is the session engine's (:mod:`openinspect.sessions.egress_authority`).
"""
