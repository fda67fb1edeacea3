"""Repo secrets: values an admin gives every box of a repo (or every box) as environment
variables, and keeps out of everything else.

- **At rest** (``store.secrets``): each value sealed with AES-256-GCM (``store.crypto``) under a
  purpose naming its scope and name, so a ciphertext copied into another row does not open.
- **Through the API** (``api.routes.secrets``): write-only. Names, scopes and timestamps come
  back; values never do, not in a listing, an answer or an error.
- **Into a box** (``sessions.sandbox``): the global secrets and the repo's, the repo's winning,
  as environment variables when the box starts (``SandboxSpec.env``, which a provider passes as
  the box's environment, never on a command line).
- **Out of everything else** (:mod:`.redact`): every value a box was given is replaced by
  ``[secret:NAME]`` in what the box sends back (command output, file reads, logs, errors: at the
  bridge connection, before any of it is stored, shown to the model or published), in every
  event of the session (a second net), in the box's log file and in the server's log.

:mod:`.rules` says which names and values are accepted, :mod:`.dotenv` reads pasted ``.env``
text.
"""
