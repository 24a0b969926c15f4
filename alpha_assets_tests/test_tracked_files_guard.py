"""The session guard of ``alpha_assets_tests/conftest.py``: what it sees as a changed tracked file, on a real repo."""

from __future__ import annotations

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
    assert tracked_changes(repo) == set()


def test_tracked_changes_names_a_rewritten_and_a_deleted_tracked_file(repo):
    (repo / "docs" / "table.md").write_text("rewritten by a test\n")
    (repo / "keep.txt").unlink()
    assert tracked_changes(repo) == {" M docs/table.md", " D keep.txt"}
    assert tracked_changes(repo / "docs") == {" M docs/table.md"}  # a folder sees only the files below it


def test_tracked_changes_a_file_changed_before_the_run_stays_the_same_entry(repo):
    # The guard compares the sets before and after: a developer's edit in progress is not reported again.
    (repo / "docs" / "table.md").write_text("edited by hand before the run\n")
    before = tracked_changes(repo)
    (repo / "docs" / "table.md").write_text("edited again\n")
    (repo / "keep.txt").write_text("rewritten by a test\n")
    assert tracked_changes(repo) - before == {" M keep.txt"}


def test_tracked_changes_outside_a_git_checkout_is_none(tmp_path):
    plain = tmp_path / "not_a_repo"
    plain.mkdir()
    assert tracked_changes(plain) is None
