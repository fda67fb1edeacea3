"""openinspect benchmarks: ``python -m bench`` (or ``make bench``) prints one JSON object.

- ``first_model_request_ms``: prompt POST → the scripted model receives the prompt's first
  request; ``cold`` on a new session (its sandbox boots), ``warm`` on a follow-up prompt.
- ``first_model_request_overhead_ms``: the warm ``first_model_request_ms`` (p50) minus a bare
  pydantic-ai harness's on the same scripted server in the same run; goal ≤ 15 ms.
- ``first_tool_result_ms``: prompt POST → the client receives the prompt's first ``tool-result``
  (one ``bash true`` call), cold and warm, against a bare ``bwrap … /usr/bin/true`` subprocess.
- ``fanout``: N session WebSocket clients (1, 10, 100) while events are offered on the server's
  bus (Redis) at fixed rates (250, 1,000, 4,000/s): delivered events/s and p50/p99 latency
  (receive time − the event's ``ts``, stamped when offered), against a bare ``websockets``
  broadcast server offered the same events at the same rates; ``ratio`` per client count is the
  most delivered/s at any of those rates over the baseline's (goal ≥ 0.5 at 100 clients), with the
  p99 at 1,000/s and 100 clients (goal < 50 ms) and the other compression setting compared.
  Both servers are read by the same lightweight receivers (``bench.receivers``: sans-I/O
  ``websockets`` clients in a process of their own), so the harness does not saturate first.
- ``web_open_5000_events_ms``: headless Chromium opening a 5,000-event session in the web app:
  time to first timeline paint and to interactive, and to an older page after scrolling to the
  top, against the same page opening a one-prompt session.
- ``cli_start_ms``: a fresh ``python -m openinspect --help`` and ``… sessions list`` (against the
  bench server) from spawn to exit, against ``python -c pass`` in the same run.
- ``server_start_ms``: spawning ``openinspect serve`` (fresh home, model keys configured) → its
  first 200 on ``/healthz``, against a bare uvicorn server answering one route; goal 2,000 ms.
- ``failover_s``: two replicas on Postgres and Redis; the owner of a session running a long
  command is killed → the next prompt posted through the other replica is accepted (p50, max;
  goal 15 s), against a prompt forwarded to a live owner.
- ``sessions_per_process``: server RSS per session while 50 sessions stream at once, and per
  evicted idle session (what a second round of 50 adds after the first was evicted).

- ``events_per_s``: durable events into one process through the real event log (50 sessions
  appending at once), on SQLite and Postgres: group commit, the same path one event per
  transaction, and a bare ``sqlite3`` insert-and-commit loop; goal 5,000/s on SQLite.

- ``snapshot_restore``: ``snapshot_restore_ratio``, the first tool result of a follow-up in a
  box restored from a snapshot (after the idle reaper snapshotted and stopped the first) over a
  new session's in a fresh box, whose ``setup.sh`` makes a venv and pip-installs a wheel
  from a directory in the repo (``--no-index``); goal ≤ 0.1.

- ``repo_image``: ``repo_image_cold_start_ms``, a new session's first tool result (from its
  create) in a box started from its repo's image, for a repo of 10,000 files, against
  ``git clone --local`` of the same repo (``git_clone_local_ms``) and a session whose box
  clones it fresh.
- ``pool``: ``pool_claim_ms`` (a session's ``warming`` → ``ready`` on a box claimed from the
  warm pool: claim and bind) and ``cold_to_warm_ratio``, the first tool result of a session
  started on a pooled box over a tool result in an already-warm box; goal ≤ 1.5. Baseline: a
  fresh box's first tool result, in the same run.
- ``boxcost``: ``box_memory_mb``, the PSS of an idle bwrap box (every process of it, from
  ``/proc/<pid>/smaps_rollup``) with 10 idle boxes at once, once their runtimes hibernated (with
  1 box, and RSS, beside it; goal ≤ 8); ``box_disk_mb``, the disk of a box's clone of a repo with
  60 commits of incompressible history, against the mirror and a plain ``git clone --local
  --no-hardlinks``; and the first tool result of a prompt in a box that hibernated since the
  last one against one in an awake box (goal ≤ 1.5×), with a model that answers at once and one
  that takes 500 ms.

``--only latency,fanout`` runs some of the parts (``latency``, ``cli``, ``fanout``,
``server_start``, ``web``, ``failover``, ``sessions``, ``events``, ``snapshot``, ``image``,
``pool``, ``boxcost``); the object then has their keys only.

Modules: ``latency``, ``fanout``, ``web``, ``cli_start``, ``server_start``, ``failover``,
``sessions_per_process``, ``events``, ``snapshot``, ``image``, ``pool``, ``boxcost``,
``ws_baseline`` and ``bare_server`` (the baseline servers, run as subprocesses), ``common``
(environment, percentiles), ``suite`` (the run as a whole).
"""
