"""``bind`` in the runtime: a booted box learns its session's branch once; what it is asked is
checked, what it cannot do is a stable error code."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from openinspect.runtime.address import BridgeAddress, unix_url
from openinspect.runtime.binding import Binding
from openinspect.runtime.boot import Boot
from openinspect.runtime.bridge import Outbox
from openinspect.runtime.protocol import RpcFailure
from tests.runtime.helpers import boot_plan, git_env
from tests.scm.helpers import Git, make_upstream


async def booted(tmp_path: Path) -> tuple[Binding, Path, Git]:
    """A box's repo booted from an upstream with ``main`` and ``openinspect/existing``, and its
    (unbound) binding."""
    git = Git(tmp_path / "home")
    origin = await make_upstream(git, tmp_path / "upstreams")
    plan = boot_plan(tmp_path, origin)
    plan.workspace.mkdir()
    env = git_env(tmp_path)
    assert await Boot(plan, Outbox(), env).run()
    address = BridgeAddress.parse(unix_url(str(tmp_path / "bridge.sock")))
    return Binding(plan.repo_dir, env, bridge=address, token="t"), plan.repo_dir, git


async def test_a_box_is_bound_once_and_again_only_to_the_same_session(tmp_path: Path) -> None:
    binding, repo, git = await booted(tmp_path)
    asked = {"work_branch": "openinspect/existing"}
    # Two binds at once (a replayed request): one checkout, the same answer.
    first, again = await asyncio.gather(binding.bind(asked), binding.bind(asked))
    assert first == again == {"branch": "openinspect/existing", "tracking": True, "proxied": False}
    assert await git.out("rev-parse", "--abbrev-ref", "@{upstream}", cwd=repo) == (
        "origin/openinspect/existing"
    )
    for other in ({"work_branch": "openinspect/other"}, {**asked, "git_remote_path": "/git/s"}):
        with pytest.raises(RpcFailure) as refused:
            await binding.bind(other)
        assert refused.value.code == "already_bound"
    assert await git.out("branch", "--show-current", cwd=repo) == "openinspect/existing"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"work_branch": ""},
        {"work_branch": 7},
        {"work_branch": "-f"},
        {"work_branch": "a..b"},
        {"work_branch": "x" * 300},
        {"work_branch": "ok", "git_remote_path": "/sandbox/bridge"},
        {"work_branch": "ok", "git_remote_path": ["/git/x"]},
    ],
)
async def test_bad_params_are_invalid_params(tmp_path: Path, params: dict[str, object]) -> None:
    binding, repo, git = await booted(tmp_path)
    with pytest.raises(RpcFailure) as refused:
        await binding.bind(params)
    assert refused.value.code == "invalid_params"
    assert await git.out("branch", "--show-current", cwd=repo) == "main"  # nothing done


async def test_before_the_clone_it_is_not_ready(tmp_path: Path) -> None:
    address = BridgeAddress.parse("unix:///nowhere.sock")
    binding = Binding(tmp_path / "repo", {"PATH": os.environ["PATH"]}, bridge=address, token="t")
    with pytest.raises(RpcFailure) as refused:
        await binding.bind({"work_branch": "openinspect/s"})
    assert refused.value.code == "not_ready"


async def test_a_checkout_git_refuses_is_git_failed_and_can_be_retried(tmp_path: Path) -> None:
    binding, repo, git = await booted(tmp_path)
    # A local change the tracked branch would overwrite: git refuses the checkout.
    await git.run(
        "checkout",
        "--quiet",
        "-b",
        "openinspect/existing",
        "--track",
        "origin/openinspect/existing",
        cwd=repo,
    )
    await git.run("checkout", "--quiet", "main", cwd=repo)
    (repo / "README.md").write_text("changed while booting\n")
    await git.run("-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qam", "x", cwd=repo)
    await git.run("checkout", "--quiet", "openinspect/existing", cwd=repo)
    (repo / "README.md").write_text("uncommitted\n")
    await git.run("checkout", "--quiet", "main", cwd=repo, check=False)  # refused: stays
    with pytest.raises(RpcFailure) as refused:
        await binding.bind({"work_branch": "main"})
    assert refused.value.code == "git_failed"
    assert "checking out main failed" in refused.value.message
    (repo / "README.md").write_text("# widgets\n")
    assert (await binding.bind({"work_branch": "main"}))["branch"] == "main"
