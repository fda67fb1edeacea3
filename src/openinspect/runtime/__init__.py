"""The in-sandbox runtime: bridge client, boot supervisor and RPC executor.

It runs inside every sandbox under the system Python (3.11 or newer) with only the standard
library and ``websockets`` on its path, so nothing here may import the rest of openinspect.
Start it with ``python3 -m openinspect.runtime``; :mod:`openinspect.runtime.supervisor`
documents its environment and :mod:`openinspect.runtime.protocol` the wire format.
"""

RUNTIME_VERSION = "0.1.0"
