"""The Linear agent: an issue delegated to the app, or a mention of it, starts a session; the
agent session in Linear shows its progress as activities (a thought at once, actions as tools
run, a final response with the pull request, an error when it fails). See ``docs/linear.md``.

Inbound (``inbound``): ``POST /webhooks/linear`` verifies the signature and the timestamp
(``verify``), stores the delivery in the inbox before it answers (with the first thought decided
in the same transaction), then handles it in the background (``handlers``). Outbound: a feed
projection (``outbound``) decides activities in the cursor's transaction; the ``outbox``
service posts them (``sender``), each once. Install: OAuth with the app actor (``install``);
the tokens stay in the control plane, sealed (``store.linear``).
"""
