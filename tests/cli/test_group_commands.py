"""Group commands: avatar and header images, invitations."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from fedcop.cli import main
from tests.media.images import encode
from tests.support.settings import TEST_DOMAIN, cli_env


def _run(database_url: str, media: Path, *args: str) -> Result:
    environment = cli_env(database_url, FEDCOP_MEDIA_DIR=str(media))
    return CliRunner().invoke(main, list(args), env=environment)


def _community(database_url: str, media: Path) -> None:
    for name in ("carol", "dave"):
        assert _run(database_url, media, "user", "create", name).exit_code == 0
    made = _run(database_url, media, "group", "create", "frailty", "--name", "Frailty CoP",
                "--owner", "carol")  # fmt: skip
    assert made.exit_code == 0, made.output


def test_a_moderator_sets_and_removes_the_avatar(database_url: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    _community(database_url, media)
    picture = tmp_path / "logo.png"
    picture.write_bytes(encode("PNG"))

    result = _run(database_url, media, "group", "image", "frailty", "avatar", str(picture),
                  "--by", "carol", "--alt", "Our logo")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"https://{TEST_DOMAIN}/groups/frailty/images/")
    assert result.output.strip().endswith(".png")
    assert len(list(media.rglob("*.png"))) == 1

    removed = _run(database_url, media, "group", "image", "frailty", "avatar", "--remove",
                   "--by", "carol")  # fmt: skip
    assert removed.exit_code == 0, removed.output
    assert "removed the avatar of frailty" in removed.output


def test_others_are_refused_in_one_line(database_url: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    _community(database_url, media)
    picture = tmp_path / "logo.jpg"
    picture.write_bytes(encode("JPEG"))
    result = _run(database_url, media, "group", "image", "frailty", "header", str(picture),
                  "--by", "dave")  # fmt: skip
    assert result.exit_code == 1
    assert result.output.strip() == "Error: @dave is not a moderator of @frailty"
    assert not list(media.rglob("*.jpg"))
    neither = _run(database_url, media, "group", "image", "frailty", "header", "--by", "carol")
    assert neither.exit_code == 2


def test_invite_list_accept_and_decline(database_url: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    _community(database_url, media)
    assert _run(database_url, media, "user", "create", "erin").exit_code == 0
    for person in ("dave", "erin"):
        invited = _run(database_url, media, "group", "invite", "frailty", person, "--by", "carol")
        assert invited.exit_code == 0, invited.output
        assert f"invited https://{TEST_DOMAIN}/users/{person}" in invited.output
    listed = _run(database_url, media, "group", "invitations", "dave")
    assert listed.output.startswith(f"frailty\thttps://{TEST_DOMAIN}/groups/frailty\t"
                                    f"https://{TEST_DOMAIN}/users/carol\t")  # fmt: skip
    accepted = _run(database_url, media, "group", "accept", "frailty", "dave")
    assert accepted.exit_code == 0, accepted.output
    assert "active" in accepted.output
    assert _run(database_url, media, "group", "decline", "frailty", "erin").exit_code == 0
    members = _run(database_url, media, "group", "members", "frailty").output
    assert f"https://{TEST_DOMAIN}/users/dave\tmember\tactive" in members
    assert "erin" not in members
    refused = _run(database_url, media, "group", "invite", "frailty", "erin", "--by", "dave")
    assert refused.exit_code == 1
    assert refused.output.strip() == "Error: @dave is not a moderator of @frailty"


def test_an_owner_appoints_a_moderator(database_url: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    _community(database_url, media)
    assert _run(database_url, media, "group", "join", "frailty", "dave").exit_code == 0
    made = _run(database_url, media, "group", "role", "frailty", "dave", "moderator",
                "--by", "carol")  # fmt: skip
    assert made.exit_code == 0, made.output
    assert made.output.strip() == (
        f"https://{TEST_DOMAIN}/users/dave in https://{TEST_DOMAIN}/groups/frailty: moderator"
    )
    refused = _run(database_url, media, "group", "role", "frailty", "carol", "member",
                   "--by", "dave")  # fmt: skip
    assert refused.output.strip() == "Error: @dave is not an owner of @frailty"
