"""The session guard of ``alpha_assets_tests/conftest.py``: what it sees as a changed tracked file, on a real repo."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from alpha_assets_tests.conftest import tracked_changes

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(root, *args):
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True, capture_output=True
    )


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "table.md").write_text("committed\n")
    (root / "keep.txt").write_text("kept\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "initial")
    return root


def test_tracked_changes_clean_checkout_is_empty_and_untracked_files_do_not_count(repo):
    (repo / "test-artifacts").mkdir()
    (repo / "test-artifacts" / "table.md").write_text("generated\n")
    assert tracked_changes(repo) == {}


def test_tracked_changes_names_a_rewritten_and_a_deleted_tracked_file_with_their_content(repo):
    (repo / "docs" / "table.md").write_text("rewritten by a test\n")
    (repo / "keep.txt").unlink()
    changes = tracked_changes(repo / "docs")  # a folder of the checkout sees only the tracked files below it
    assert changes == {str(repo / "docs" / "table.md"): hashlib.sha256(b"rewritten by a test\n").hexdigest()}
    assert tracked_changes(repo) == {
        str(repo / "docs" / "table.md"): hashlib.sha256(b"rewritten by a test\n").hexdigest(),
        str(repo / "keep.txt"): "deleted",
    }


def test_tracked_changes_a_second_rewrite_of_an_already_changed_file_changes_its_digest(repo):
    (repo / "docs" / "table.md").write_text("edited by hand before the run\n")
    before = tracked_changes(repo)
    (repo / "docs" / "table.md").write_text("then rewritten by a test\n")
    assert tracked_changes(repo) != before


def test_tracked_changes_outside_a_git_checkout_is_none(tmp_path):
    plain = tmp_path / "not_a_repo"
    plain.mkdir()
    assert tracked_changes(plain) is None
