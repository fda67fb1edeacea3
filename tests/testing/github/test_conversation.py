"""A PR's conversation through githubkit: issue comments (listed, paged, the App's as a Bot),
reactions on the PR, its comments and its review comments, and a collaborator's permission."""

from __future__ import annotations

import httpx
import pytest
from githubkit.exception import RequestFailed
from githubkit_schemas.latest import models
from pydantic import TypeAdapter

from tests.testing.github.conftest import Repo


async def test_issue_comments_list_paged_and_the_app_is_a_bot(repo: Repo) -> None:
    number = repo.open_fix()
    repo.fake.comment(repo.full_name, number, "first, by a person", by="carol")
    gh = repo.app()
    made = await gh.rest.issues.async_create_comment(repo.owner, repo.name, number, body="bot says")
    assert made.status_code == 201
    assert made.parsed_data.user is not None and made.parsed_data.user.type == "Bot"
    page = await gh.rest.issues.async_list_comments(repo.owner, repo.name, number, per_page=1)
    assert [c.body for c in page.parsed_data] == ["first, by a person"]
    assert 'rel="next"' in page.headers["link"]
    every = [
        c
        async for c in gh.rest.paginate(
            gh.rest.issues.async_list_comments,
            owner=repo.owner,
            repo=repo.name,
            issue_number=number,
        )
    ]
    assert [(c.user.login, c.user.type) for c in every if c.user] == [
        ("carol", "User"),
        ("openinspect-fake[bot]", "Bot"),
    ]
    assert every[1].html_url.endswith(f"/pull/{number}#issuecomment-{every[1].id}")
    one = await gh.rest.issues.async_get_comment(repo.owner, repo.name, every[0].id)
    assert one.parsed_data.body == "first, by a person"
    # The App's comment reaches the webhook as GitHub sends it (handlers ignore their own).
    sent = repo.wait("issue_comment", "created", count=2)
    bot = TypeAdapter(models.WebhookIssueCommentCreated).validate_python(sent[1].payload)
    assert (bot.comment.user and bot.comment.user.login, bot.sender.type) == (
        "openinspect-fake[bot]",
        "Bot",
    )
    too_long = httpx.post(
        f"{repo.fake.api_url}/repos/{repo.full_name}/issues/{number}/comments",
        json={"body": "x" * 65_537},
        headers={"Authorization": f"token {repo.fake.user_token('alice')}"},
    )
    assert too_long.status_code == 422
    with pytest.raises(RequestFailed):
        await gh.rest.issues.async_list_comments(repo.owner, repo.name, 999)


async def test_reactions_once_per_user_and_content(repo: Repo) -> None:
    number = repo.open_fix()
    fake = repo.fake
    comment = fake.comment(repo.full_name, number, "please look", by="carol").record
    pull = fake.pull(repo.full_name, number)
    inline = fake.review_comment(
        repo.full_name, number, "here", by="carol", path="calc.py", line=3
    ).record
    gh = repo.app()
    first = await gh.rest.reactions.async_create_for_issue(
        repo.owner, repo.name, number, content="eyes"
    )
    again = await gh.rest.reactions.async_create_for_issue(
        repo.owner, repo.name, number, content="eyes"
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.parsed_data.id == again.parsed_data.id
    assert first.parsed_data.user is not None and first.parsed_data.user.type == "Bot"
    on_comment = await gh.rest.reactions.async_create_for_issue_comment(
        repo.owner, repo.name, comment.id, content="+1"
    )
    on_inline = await gh.rest.reactions.async_create_for_pull_request_review_comment(
        repo.owner, repo.name, inline.id, content="rocket"
    )
    assert (on_comment.status_code, on_inline.status_code) == (201, 201)
    alice = repo.as_user("alice")
    await alice.rest.reactions.async_create_for_issue(
        repo.owner, repo.name, number, content="heart"
    )
    listed = await gh.rest.reactions.async_list_for_issue(repo.owner, repo.name, number)
    assert [r.content for r in listed.parsed_data] == ["eyes", "heart"]
    hearts = await gh.rest.reactions.async_list_for_issue(
        repo.owner, repo.name, number, content="heart"
    )
    assert [r.user.login for r in hearts.parsed_data if r.user] == ["alice"]
    on_inline_list = await gh.rest.reactions.async_list_for_pull_request_review_comment(
        repo.owner, repo.name, inline.id
    )
    assert [r.content for r in on_inline_list.parsed_data] == ["rocket"]
    assert [(r.subject, r.content) for r in fake.reactions(repo.full_name)] == [
        (f"issue:{number}", "eyes"),
        (f"issue_comment:{comment.id}", "+1"),
        (f"pull_comment:{inline.id}", "rocket"),
        (f"issue:{number}", "heart"),
    ]
    assert [r.content for r in fake.reactions(repo.full_name, f"issue:{number}")] == [
        "eyes",
        "heart",
    ]
    # Counts show on the comments.
    shown = await gh.rest.issues.async_get_comment(repo.owner, repo.name, comment.id)
    assert shown.parsed_data.reactions is not None and shown.parsed_data.reactions.plus_one == 1
    assert pull.number == number
    token = fake.mint_installation_token(repo.installation_id).token
    bad = httpx.post(
        f"{fake.api_url}/repos/{repo.full_name}/issues/{number}/reactions",
        json={"content": "party"},
        headers={"Authorization": f"token {token}"},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "content"
    missing = httpx.post(
        f"{fake.api_url}/repos/{repo.full_name}/issues/comments/99999999/reactions",
        json={"content": "eyes"},
        headers={"Authorization": f"token {token}"},
    )
    assert missing.status_code == 404


async def test_a_collaborators_permission(repo: Repo) -> None:
    gh = repo.app()
    repo.fake.state.require_repo(repo.full_name).collaborators["dave"] = "admin"

    async def permission(login: str) -> tuple[str, str]:
        answer = await gh.rest.repos.async_get_collaborator_permission_level(
            repo.owner, repo.name, login
        )
        found = answer.parsed_data
        assert isinstance(found, models.RepositoryCollaboratorPermission)
        assert found.user is not None and found.user.login.lower() == login.lower()
        return found.permission, found.role_name

    assert await permission("alice") == ("write", "write")
    assert await permission("carol") == ("read", "read")
    assert await permission("dave") == ("admin", "admin")
    assert await permission("bob") == ("none", "none")
    with pytest.raises(RequestFailed) as info:
        await permission("nobody-here")
    assert info.value.response.status_code == 404
    with pytest.raises(RequestFailed) as info:
        await permission("acme")  # an organization is not a collaborator
    assert info.value.response.status_code == 404
