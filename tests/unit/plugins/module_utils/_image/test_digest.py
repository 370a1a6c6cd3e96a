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
    (ctx / "Dockerfile").write_text("FROM scratch AS test\nCOPY app /\nFROM scratch\nCOPY . /\n")
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


@pytest.mark.parametrize("patterns", PATTERNS, ids=[" ".join(p) or "none" for p in PATTERNS])
def test_version_control_metadata_is_left_out_as_the_docker_sdk_would_leave_it_out(tmp_path, patterns):
    """What a context sends by default is what the SDK sends given the same patterns, and no VCS metadata even
    when an exception such as ``!src`` re-includes the folder around it."""
    docker_build = pytest.importorskip("docker.utils.build")
    root = make_tree(tmp_path / "tree", {name: name for name in TREE + ["src/.git", "sub/.hg/store", ".svn/x"]})
    (root / ".dockerignore").write_text("\n".join(patterns))
    resolved = d.context_patterns(str(root))
    ours = {rel for rel, kind, mode, payload in d.context_entries(str(root), resolved) if kind == "f"}
    texts = [("!" if p.exclusion else "") + p.text for p in resolved]
    sent = {p for p in docker_build.exclude_paths(str(root), texts, dockerfile="Dockerfile") if (root / p).is_file()}
    sent -= {name for name in ("Dockerfile", ".dockerignore") if name not in ours}  # the SDK always sends them
    assert ours == sent and not {".git/HEAD", "src/.git", "sub/.hg/store", ".svn/x"} & ours


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
    hashed = {rel for rel, kind, mode, payload in d.context_entries(str(ctx), d.context_patterns(str(ctx)))
              if kind == "f"}
    assert inside == "Dockerfile" and names == hashed
    assert "notes.txt" not in names and "app/main.py" in names

    outside = tmp_path / "Other.Dockerfile"
    outside.write_text("FROM scratch\n")
    buffer = io.BytesIO()
    assert d.write_context_tar(str(ctx), str(outside), buffer) == ".slipway.Dockerfile"


# --------------------------------------------------------------------------------------------- VCS metadata
@pytest.fixture
def repo(ctx):
    """``ctx`` as a work tree: a .git folder, a submodule's .git file, a Mercurial store, a .gitignore."""
    return make_tree(ctx, {".git/HEAD": "ref: refs/heads/main\n", ".git/objects/ab/cdef": b"\0blob",
                           "vendored/.git": "gitdir: ../.git/modules/vendored\n", "vendored/lib.py": "x\n",
                           ".hg/store/data": b"\1", ".gitignore": "*.pyc\n"})


@pytest.mark.parametrize("change", [
    lambda c: (c / ".git" / "refs" / "remotes" / "origin").mkdir(parents=True),  # a fetch
    lambda c: (c / ".git" / "FETCH_HEAD").write_text("0123 branch 'main'\n"),
    lambda c: (c / ".git" / "objects" / "ab" / "cdef").write_bytes(b"\0other"),  # a gc, a commit elsewhere
    lambda c: (c / ".git" / "HEAD").chmod(0o600),
    lambda c: (c / "vendored" / ".git").write_text("gitdir: /another/checkout/.git/modules/vendored\n"),
    lambda c: (c / ".hg" / "store" / "data").write_bytes(b"\2"),
    lambda c: (c / ".svn").mkdir(),
])
def test_version_control_metadata_does_not_change_the_digest(repo, change):
    before = d.build_digest(str(repo))
    change(repo)
    assert d.build_digest(str(repo)) == before


def test_version_control_metadata_is_not_sent_but_versioned_files_are(repo):
    import io
    import tarfile

    buffer = io.BytesIO()
    d.write_context_tar(str(repo), "Dockerfile", buffer)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as archive:
        names = set(archive.getnames())
    assert not {n for n in names if n.split("/")[0] in (".git", ".hg") or n == "vendored/.git"}
    assert {".gitignore", "vendored/lib.py", "app/main.py"} <= names
    before = d.build_digest(str(repo))
    (repo / ".gitignore").write_text("*.pyo\n")
    assert d.build_digest(str(repo)) != before


def test_only_an_exception_naming_it_brings_git_back(repo):
    def kept():
        return {rel for rel, kind, mode, payload in d.context_entries(str(repo), d.context_patterns(str(repo)))}

    (repo / ".dockerignore").write_text("*\n!app\n!vendored\n!Dockerfile\n")
    assert "vendored/lib.py" in kept() and "vendored/.git" not in kept() and ".git/HEAD" not in kept()
    (repo / ".dockerignore").write_text("**/__pycache__\ndocs\n*.txt\n!.git\n")
    assert {".git", ".git/HEAD", ".git/objects/ab/cdef"} <= kept() and "vendored/.git" not in kept()
    assert ".hg/store/data" not in kept()
    before = d.build_digest(str(repo))
    (repo / ".git" / "FETCH_HEAD").write_text("0123 branch 'main'\n")
    assert d.build_digest(str(repo)) != before


def test_exceptions_that_cannot_match_inside_an_excluded_folder_do_not_walk_it(repo, monkeypatch):
    (repo / ".dockerignore").write_text("app\n!app/main.py\n")
    walked = []
    real_lstat = os.lstat
    monkeypatch.setattr(d.os, "lstat", lambda path: walked.append(str(path)) or real_lstat(path))
    kept = {rel for rel, kind, mode, payload in d.context_entries(str(repo), d.context_patterns(str(repo)))}
    assert "app/main.py" in kept and "app/__pycache__/main.cpython-311.pyc" not in kept
    assert not [path for path in walked if "/.git/" in path]


# --------------------------------------------------------------------------------------------- base images
class Bases:
    """A resolver that answers from a table and records what it was asked."""

    def __init__(self, ids):
        self.ids, self.asked = ids, []

    def __call__(self, base):
        self.asked.append((base.reference, base.platform))
        if base.reference not in self.ids:
            raise SlipwayError(f"base image {base.reference} cannot be resolved")
        return self.ids[base.reference]


BUSYBOX, DEBIAN = "sha256:" + "b" * 64, "sha256:" + "d" * 64


@pytest.fixture
def layered(ctx):
    (ctx / "Dockerfile").write_text("ARG BASE=slipway/busybox:stable\nFROM slipway/debian:bookworm AS build\n"
                                    "FROM $BASE\nCOPY --from=build /etc/os-release /\nCOPY app /app\n")
    return ctx


def test_the_digest_covers_what_each_base_is(layered):
    bases = Bases({"slipway/busybox:stable": BUSYBOX, "slipway/debian:bookworm": DEBIAN})
    before = d.build_digest(str(layered), resolve_base=bases)
    assert bases.asked == [("slipway/debian:bookworm", None), ("slipway/busybox:stable", None)]
    assert d.build_digest(str(layered), resolve_base=Bases(dict(bases.ids))) == before  # same bases, same tag
    rebuilt = Bases({"slipway/busybox:stable": "sha256:" + "c" * 64, "slipway/debian:bookworm": DEBIAN})
    assert d.build_digest(str(layered), resolve_base=rebuilt) != before
    swapped = Bases({"slipway/busybox:stable": DEBIAN, "slipway/debian:bookworm": BUSYBOX})
    assert d.build_digest(str(layered), resolve_base=swapped) != before


def test_bases_follow_build_args_and_target(layered):
    bases = Bases({"slipway/busybox:stable": BUSYBOX, "slipway/debian:bookworm": DEBIAN,
                   "127.0.0.1:5001/base:1": BUSYBOX})
    d.build_digest(str(layered), build_args={"BASE": "127.0.0.1:5001/base:1"}, resolve_base=bases)
    d.build_digest(str(layered), target="build", resolve_base=bases)
    assert [reference for reference, _platform in bases.asked] == [
        "slipway/debian:bookworm", "127.0.0.1:5001/base:1", "slipway/debian:bookworm"]


def test_a_base_that_cannot_be_resolved_fails_the_digest(layered):
    with pytest.raises(SlipwayError, match="slipway/busybox:stable cannot be resolved"):
        d.build_digest(str(layered), resolve_base=Bases({"slipway/debian:bookworm": DEBIAN}))
    with pytest.raises(SlipwayError, match="no way to resolve them"):
        d.build_digest(str(layered))


def test_a_scratch_build_needs_no_resolver(ctx):
    assert d.build_digest(str(ctx), resolve_base=Bases({})) == d.build_digest(str(ctx))
