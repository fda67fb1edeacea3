"""The store seam: one object with a table-group per attribute, over one async engine."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from openinspect.errors import StoreError
from openinspect.store.automations import AutomationStore
from openinspect.store.branches import BranchStore
from openinspect.store.crypto import Sealer
from openinspect.store.db import create_engine, migrate
from openinspect.store.egress import EgressStore
from openinspect.store.events import EventStore
from openinspect.store.feed import FeedStore
from openinspect.store.github_feedback import GithubFeedbackStore
from openinspect.store.identities import IdentityStore
from openinspect.store.images import ImageStore
from openinspect.store.inbox import InboxStore
from openinspect.store.leases import LeaseStore
from openinspect.store.linear import LinearStore
from openinspect.store.mcp_servers import McpServerStore
from openinspect.store.outbox import OutboxStore
from openinspect.store.owners import OwnerStore
from openinspect.store.pools import PoolStore
from openinspect.store.presence import PresenceStore
from openinspect.store.prompts import PromptStore
from openinspect.store.pulls import PullRequestStore
from openinspect.store.repos import RepoStore
from openinspect.store.review_settings import ReviewSettingsStore
from openinspect.store.sandboxes import SandboxStore
from openinspect.store.secrets import SecretStore
from openinspect.store.sessions import SessionStore
from openinspect.store.skills import SkillStore
from openinspect.store.slack_inbox import SlackInboxStore
from openinspect.store.slack_people import SlackPeopleStore
from openinspect.store.slack_threads import SlackThreadStore
from openinspect.store.snapshots import SnapshotStore
from openinspect.store.spend import SpendStore
from openinspect.store.users import UserStore
from openinspect.store.webhooks import WebhookStore

log = logging.getLogger(__name__)


@dataclass
class Store:
    engine: AsyncEngine
    users: UserStore
    repos: RepoStore
    sessions: SessionStore
    prompts: PromptStore
    events: EventStore
    feed: FeedStore
    sandboxes: SandboxStore
    snapshots: SnapshotStore
    branches: BranchStore
    pulls: PullRequestStore
    webhooks: WebhookStore
    identities: IdentityStore
    leases: LeaseStore
    presence: PresenceStore
    owners: OwnerStore
    automations: AutomationStore
    slack_threads: SlackThreadStore
    slack_people: SlackPeopleStore
    slack_inbox: SlackInboxStore
    outbox: OutboxStore
    inbox: InboxStore
    review_settings: ReviewSettingsStore
    github_feedback: GithubFeedbackStore
    linear: LinearStore
    egress: EgressStore
    secrets: SecretStore
    images: ImageStore
    pools: PoolStore
    spend: SpendStore
    skills: SkillStore
    mcp_servers: McpServerStore

    @classmethod
    async def open(
        cls, url: str, *, run_migrations: bool = True, sealer: Sealer | None = None
    ) -> Store:
        """Connect, migrate to the newest schema, and return the store. Close with ``close``.
        ``sealer`` encrypts the OAuth tokens kept with identities, integrations' tokens and repo
        secrets (without it, keeping or reading one is a ``ConfigError``)."""
        engine = create_engine(url)
        if run_migrations:
            try:
                await migrate(engine)
            except StoreError as exc:
                # Said to the operator starting the server: where, and the driver's words.
                where = engine.url.render_as_string(hide_password=True)
                log.error("the database at %s cannot be opened: %s", where, exc.__cause__ or exc)
                await engine.dispose()
                raise
        return cls(
            engine=engine,
            users=UserStore(engine),
            repos=RepoStore(engine),
            sessions=SessionStore(engine),
            prompts=PromptStore(engine),
            events=EventStore(engine),
            feed=FeedStore(engine),
            sandboxes=SandboxStore(engine),
            snapshots=SnapshotStore(engine),
            branches=BranchStore(engine),
            pulls=PullRequestStore(engine),
            webhooks=WebhookStore(engine),
            identities=IdentityStore(engine, sealer),
            leases=LeaseStore(engine),
            presence=PresenceStore(engine),
            owners=OwnerStore(engine),
            automations=AutomationStore(engine, sealer),
            slack_threads=SlackThreadStore(engine),
            slack_people=SlackPeopleStore(engine),
            slack_inbox=SlackInboxStore(engine),
            outbox=OutboxStore(engine),
            inbox=InboxStore(engine),
            review_settings=ReviewSettingsStore(engine),
            github_feedback=GithubFeedbackStore(engine),
            linear=LinearStore(engine, sealer),
            egress=EgressStore(engine),
            secrets=SecretStore(engine, sealer),
            images=ImageStore(engine),
            pools=PoolStore(engine),
            spend=SpendStore(engine),
            skills=SkillStore(engine),
            mcp_servers=McpServerStore(engine, sealer),
        )

    async def close(self) -> None:
        await self.engine.dispose()
