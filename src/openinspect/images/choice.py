"""Which state a session's new box starts from: the session's newest snapshot, else its repo's
newest good image, else nothing (a fresh clone).

The session's own snapshot always wins: it holds the session's work. An image is only for a
workspace that never had a box (an image restored over a workspace would replace the work in
it), of a registered repo that opted in, for the session's base branch, made by this provider.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from openinspect.runtime.protocol import BootMode
from openinspect.sandboxes.base import SandboxProvider, SnapshotCapable, SnapshotRef
from openinspect.store import Store
from openinspect.store.images import ImageBuild
from openinspect.store.snapshots import SnapshotRecord


@dataclass(frozen=True)
class BootSource:
    """What to restore (None: nothing, create a box) and the boot mode it gets."""

    ref: SnapshotRef | None
    boot_mode: BootMode
    snapshot: SnapshotRecord | None = None
    image: ImageBuild | None = None

    @property
    def known_commits(self) -> tuple[str, ...]:
        """What the restored checkout holds already (an image's commit)."""
        sha = self.image.commit_sha if self.image is not None else None
        return (sha,) if sha else ()

    def describe_image(self) -> str | None:
        """The line that says a box started from an image (None when it did not)."""
        image = self.image
        if image is None:
            return None
        when = (image.finished_at or image.created_at).strftime("%Y-%m-%d %H:%M:%S UTC")
        sha = (image.commit_sha or "")[:12]
        return f"started from repo image {image.id} built {when} at commit {sha}"


FRESH = BootSource(None, "fresh")


def from_snapshot(snapshot: SnapshotRecord) -> BootSource:
    return BootSource(SnapshotRef(**asdict(snapshot.data)), "snapshot_restore", snapshot=snapshot)


async def repo_image(
    store: Store, provider: SandboxProvider, repo_id: str | None, base_branch: str
) -> BootSource | None:
    """The repo's newest good image for ``base_branch`` as a boot source, if it has one this
    provider made and the repo still opts in."""
    if repo_id is None or not isinstance(provider, SnapshotCapable):
        return None
    if not await store.images.is_enabled(repo_id):
        return None
    image = await store.images.newest_good(repo_id, base_branch)
    if image is None or image.data is None or image.data.provider != provider.name:
        return None
    return BootSource(SnapshotRef(**asdict(image.data)), "repo_image", image=image)
