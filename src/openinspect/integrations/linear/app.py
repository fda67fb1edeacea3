"""The Linear agent's parts, built once by the control plane when ``linear.enabled``: the API
client, the workspace tokens, the inbound side, the install flow, the outbox's sender and the
feed projection."""

from __future__ import annotations

from dataclasses import dataclass

from openinspect.agent.models import ModelRegistry
from openinspect.bus import Bus
from openinspect.integrations.linear.client import LinearClient
from openinspect.integrations.linear.inbound import LinearInbound
from openinspect.integrations.linear.install import LinearInstaller
from openinspect.integrations.linear.outbound import LinearOutbound
from openinspect.integrations.linear.sender import LinearSender
from openinspect.integrations.linear.tokens import LinearTokens
from openinspect.people.roles import SessionRepoPolicy
from openinspect.sessions.commands import CommandHandler
from openinspect.settings import Settings
from openinspect.store import Store


@dataclass(frozen=True)
class LinearApp:
    client: LinearClient
    tokens: LinearTokens
    inbound: LinearInbound
    installer: LinearInstaller
    sender: LinearSender
    outbound: LinearOutbound

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        bus: Bus,
        commands: CommandHandler,
        models: ModelRegistry,
        policy: SessionRepoPolicy,
        secret: bytes,
    ) -> LinearApp:
        client = LinearClient(settings.linear)
        tokens = LinearTokens(store, client)
        return cls(
            client=client,
            tokens=tokens,
            inbound=LinearInbound(settings, store, bus, commands, models, policy, client, tokens),
            installer=LinearInstaller(settings.linear, store, client, secret),
            sender=LinearSender(client, tokens),
            outbound=LinearOutbound(store, settings),
        )

    async def aclose(self) -> None:
        await self.inbound.close()
        await self.client.aclose()
