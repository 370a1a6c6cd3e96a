"""Context digests: .dockerignore as the engine reads it, and what does or does not change a tag."""

from __future__ import annotations

import os

import pytest
from ansible_collections.slipway.platform.plugins.module_utils._errors import SlipwayError
from ansible_collections.slipway.platform.plugins.module_utils._image import digest as d


def make_tree(root, files):
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


@pytest.fixture
def ctx(tmp_path):
    return make_tree(tmp_path / "ctx", {
        "Dockerfile": "FROM scratch\nCOPY . /\n",
        "app/main.py": "print('hi')\n",
        "app/__pycache__/main.cpython-311.pyc": b"\0\1",
        "docs/readme.md": "docs\n",
        "notes.txt": "n\n",
        ".dockerignore": "**/__pycache__\ndocs\n*.txt\n",
    })


def test_same_content_same_digest_in_another_folder(ctx, tmp_path):
    copy = tmp_path / "copy"
    for path in sorted(ctx.rglob("*"), reverse=True):  # written in another order
        if path.is_file():
            make_tree(copy, {str(path.relative_to(ctx)): path.read_bytes()})
    assert d.build_digest(str(ctx)) == d.build_digest(str(copy))


def test_ignored_files_do_not_change_the_digest(ctx):
    before = d.build_digest(str(ctx))
    (ctx / "docs" / "readme.md").write_text("changed\n")
    (ctx / "notes.txt").write_text("changed\n")
    (ctx / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"other")
    (ctx / "other.txt").write_text("new\n")
    assert d.build_digest(str(ctx)) == before


@pytest.mark.parametrize("change", [
    lambda c: (c / "app" / "main.py").write_text("print('hi!')\n"),  # one byte
    lambda c: (c / "app" / "new.py").write_text(""),  # a new empty file
    lambda c: (c / "app" / "main.py").chmod(0o755),  # mode
    lambda c: (c / "Dockerfile").write_text("FROM scratch\nCOPY . /app\n"),
    lambda c: (c / "empty").mkdir(),  # an empty folder is sent too
    lambda c: (c / ".dockerignore").write_text("docs\n"),  # brings back notes.txt and __pycache__
])
def test_a_change_the_build_reads_changes_the_digest(ctx, change):
    before = d.build_digest(str(ctx))
    change(ctx)
    assert d.build_digest(str(ctx)) != before


def test_build_args_and_target_are_part_of_the_digest(ctx):
    base = d.build_digest(str(ctx))
    assert d.build_digest(str(ctx), build_args={"A": "1"}) != base
    assert d.build_digest(str(ctx), build_args={"A": "1"}) != d.build_digest(str(ctx), build_args={"A": "2"})
    assert d.build_digest(str(ctx), target="test") != base
    assert d.build_digest(str(ctx), build_args={}, target=None) == base


def test_dockerfile_outside_the_context(ctx, tmp_path):
    outside = tmp_path / "Dockerfile.other"
    outside.write_text("FROM scratch\n")
    first = d.build_digest(str(ctx), str(outside))
    outside.write_text("FROM scratch\nENV A=1\n")
    assert d.build_digest(str(ctx), str(outside)) != first


def test_tag_is_a_prefix_of_the_digest(ctx):
    digest = d.build_digest(str(ctx))
    assert len(digest) == 64 and d.tag_of(digest) == digest[:32]


def test_missing_context_or_dockerfile(tmp_path):
    with pytest.raises(SlipwayError, match="not a folder"):
        d.build_digest(str(tmp_path / "nowhere"))
    with pytest.raises(SlipwayError, match="Dockerfile .* does not exist"):
        d.build_digest(str(tmp_path))


def test_links_are_hashed_as_links(ctx):
    os.symlink("app/main.py", ctx / "link")
    before = d.build_digest(str(ctx))
    os.remove(ctx / "link")
    os.symlink("Dockerfile", ctx / "link")
    assert d.build_digest(str(ctx)) != before


TREE = ["Dockerfile", "a.py", "b.txt", "src/x.py", "src/y.txt", "src/deep/z.py", "src/deep/keep.txt",
        "build/out.o", "build/keep/me.o", "docs/a.md", ".git/HEAD", "node_modules/m/i.js", "x?y", "weird[1].py"]
PATTERNS = [
    [],
    ["*.txt"],
    ["**/*.txt"],
    ["src"],
    ["src/**", "!src/deep/keep.txt"],
    ["build", "!build/keep"],
    ["**/deep"],
    ["/a.py", "./b.txt"],
    ["*", "!src", "!Dockerfile"],
    ["src/*/z.py"],
    [".git", "node_modules", "# a comment", "", "docs/"],
    ["?.py"],
    ["weird[0-9].py"],
    ["src/d*p"],
    ["**/*.py", "!src/**/*.py"],
]


@pytest.mark.parametrize("patterns", PATTERNS, ids=[" ".join(p) or "none" for p in PATTERNS])
def test_filtering_agrees_with_the_docker_sdk(tmp_path, patterns):
    """The files our digest covers are the files the Docker SDK sends as the build context."""
    docker_build = pytest.importorskip("docker.utils.build")
    root = make_tree(tmp_path / "tree", {name: name for name in TREE})
    ours = {rel for rel, kind, mode, payload in d.context_entries(str(root), d.parse_dockerignore("\n".join(patterns)))
            if kind == "f"}
    sent = {p for p in docker_build.exclude_paths(str(root), list(patterns), dockerfile="Dockerfile")
            if (root / p).is_file()}
    sent.discard("Dockerfile") if "Dockerfile" not in ours else None  # the SDK always adds the Dockerfile
    assert ours == sent


def test_bad_patterns_are_reported():
    with pytest.raises(SlipwayError, match="unterminated"):
        d.parse_dockerignore("src/[abc")
    with pytest.raises(SlipwayError, match="lone"):
        d.parse_dockerignore("!")


def test_moby_rules_where_the_python_sdk_differs(tmp_path):
    """moby (the docker CLI) honours escapes and re-includes below an excluded folder; so do we, and the
    build is sent our own archive, so what is hashed is what is built."""
    root = make_tree(tmp_path / "tree", {name: name for name in TREE})

    def kept(text):
        return {rel for rel, kind, mode, payload in d.context_entries(str(root), d.parse_dockerignore(text))
                if kind == "f"}

    assert "x?y" not in kept("x\\?y")
    assert kept("**\n!**/*.py") == {"a.py", "src/x.py", "src/deep/z.py", "weird[1].py"}


def test_the_archive_holds_exactly_what_was_hashed(ctx, tmp_path):
    import io
    import tarfile

    buffer = io.BytesIO()
    inside = d.write_context_tar(str(ctx), "Dockerfile", buffer)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as archive:
        names = {m.name for m in archive.getmembers() if m.isfile()}
    hashed = {rel for rel, kind, mode, payload in d.context_entries(str(ctx), d._patterns(str(ctx))) if kind == "f"}
    assert inside == "Dockerfile" and names == hashed
    assert "notes.txt" not in names and "app/main.py" in names

    outside = tmp_path / "Other.Dockerfile"
    outside.write_text("FROM scratch\n")
    buffer = io.BytesIO()
    assert d.write_context_tar(str(ctx), str(outside), buffer) == ".slipway.Dockerfile"
