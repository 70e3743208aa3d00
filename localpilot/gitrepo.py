"""The one place localpilot talks to git: discovery, tracked files, ignores, HEAD, blobs and the hook's plumbing.

Commands run through GitPython's command object (``git.cmd.Git``, what ``Repo.git`` is), which executes the git
binary itself: ``GIT_INDEX_FILE`` and the other variables git hands a hook reach each command exactly, and every
flag keeps git's own semantics. No ``git.Repo`` is opened: its discovery is GitPython's Python code, which sees
neither the environment given here nor a work tree that git finds only through ``GIT_DIR``, so discovery is
``git rev-parse`` as well.

Everything here reads. ``GIT_OPTIONAL_LOCKS=0`` keeps read commands from refreshing the index (the one write a
read may do), and nothing reaches GitPython's index or work-tree writers. GitPython is imported on first use: its
import costs about 70 ms (it also runs ``git version``), which commands that never call git should not pay.
Failures come back as one kind of error (:class:`~localpilot.errors.GitError`, or
:class:`~localpilot.errors.NotAGitRepo` for discovery) carrying git's own message.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, BinaryIO, cast

from localpilot.errors import GitError, LocalpilotError, NotAGitRepo

if TYPE_CHECKING:
    from git.cmd import Git as Command

log = logging.getLogger(__name__)

#: Added to every command's environment: read-only (no index refresh), never a credential prompt, and git's
#: messages untranslated (GitPython sets LC_ALL=C as well; said here so that it does not depend on that).
COMMAND_ENV = {"GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
NO_GIT = (
    "git is not installed or not on PATH (install git, e.g. `apt-get install git`, and try again)"
)
ZERO_OID = "0" * 40
#: ``git rev-parse --local-env-vars``: variables that point git at one repository, index or object store.
GIT_LOCAL_VARS = (
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_INTERNAL_SUPER_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
)
_PATH_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_COMMON_DIR",
    "GIT_GRAFT_FILE",
    "GIT_SHALLOW_FILE",
)
_MAX_MESSAGE = 500


def take_git_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Remove git's repository variables from ``environ`` (default ``os.environ``) and return them, paths made
    absolute (git gives hooks relative ones such as ``GIT_INDEX_FILE=.git/index``).

    Inside a hook they must reach our git calls (pass them as :class:`GitRepo`'s ``env``) and no other child
    process: a model check or a test runner pointed at the commit's temporary index would be wrong, or worse."""
    env = os.environ if environ is None else environ
    taken: dict[str, str] = {}
    for name in list(env):
        if name in GIT_LOCAL_VARS or name.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")):
            taken[name] = env.pop(name)
    for name in _PATH_VARS:
        if taken.get(name):
            taken[name] = os.path.abspath(taken[name])
    return taken


@dataclass(frozen=True)
class GitResult:
    """One finished git command: stdout as git wrote it (bytes, nothing stripped), stderr decoded."""

    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def message(self) -> str:
        """git's complaint on one line: from its first ``fatal:``/``error:`` line on (git's advice on what to do
        follows it), else its last line, else the exit status."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        if not lines:
            return f"exit status {self.returncode}"
        first = next(
            (i for i, line in enumerate(lines) if line.startswith(("fatal:", "error:"))),
            len(lines) - 1,
        )
        return " ".join(lines[first:])[:_MAX_MESSAGE]


def find_repo_root(path: Path, env: Mapping[str, str] | None = None) -> Path:
    """The top of the git work tree containing ``path`` (or the one ``env``'s ``GIT_DIR``/``GIT_WORK_TREE``
    name), as git itself finds it."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise NotAGitRepo(f"{path} does not exist")
    start = path if path.is_dir() else path.parent
    res = GitRepo(start, env).run("rev-parse", "--show-toplevel", check=False)
    if not res.ok:
        reason = res.message()
        said = "" if "not a git repository" in reason else f"; git says: {reason}"
        raise NotAGitRepo(
            f"{path} is not inside a git repository (run `git init` there, or pass --repo){said}"
        )
    return Path(os.fsdecode(res.stdout.strip())).resolve()


class GitRepo:
    """Read-only git commands in one work tree: ``root`` is where they run, ``env`` the repository variables
    (``GIT_DIR``, ``GIT_INDEX_FILE``, ...) they see on top of ``os.environ``. Cheap to make: GitPython is
    loaded by the first command."""

    def __init__(self, root: Path, env: Mapping[str, str] | None = None) -> None:
        self.root = Path(root)
        self.env: dict[str, str] = {**(env or {}), **COMMAND_ENV}
        self._command: Command | None = None

    @classmethod
    def discover(cls, path: Path, env: Mapping[str, str] | None = None) -> GitRepo:
        """The repository containing ``path`` (or the one ``env`` names)."""
        return cls(find_repo_root(path, env), env)

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> GitResult:
        """``git -C root ARGS`` with ``input`` on stdin (else /dev/null); with ``check`` a non-zero exit raises
        GitError with git's message. ``timeout`` (seconds) kills git and its children when it runs over."""
        gitpython = _gitpython()
        command = self._git()
        argv = [os.fspath(command.GIT_PYTHON_GIT_EXECUTABLE or "git"), "-C", str(self.root), *args]
        try:
            with _stdin(input) as stdin:
                status, out, err = command.execute(
                    argv,
                    istream=stdin,
                    with_extended_output=True,
                    with_exceptions=False,
                    stdout_as_string=False,
                    strip_newline_in_stdout=False,
                    kill_after_timeout=timeout,
                    env=self.env,
                )
        except (OSError, gitpython.exc.GitError) as exc:
            raise _translate(exc, args) from exc
        res = GitResult(tuple(args), status, out, err)
        if check and not res.ok:
            raise GitError(f"git {_subcommand(args)} failed in {self.root}: {res.message()}")
        return res

    def out(self, *args: str) -> bytes:
        """The stdout of a command that must succeed."""
        return self.run(*args).stdout

    def ls_files(self) -> list[str]:
        """Tracked plus untracked-but-not-ignored paths, repo-relative, sorted, deduplicated.

        Paths that are not valid UTF-8 come back with surrogate escapes (``os.fsdecode``); callers skip them."""
        res = self.run("ls-files", "-z", "--cached", "--others", "--exclude-standard", check=False)
        if not res.ok:
            raise NotAGitRepo(f"git ls-files failed in {self.root}: {res.message()}")
        return sorted({os.fsdecode(p) for p in res.stdout.split(b"\0") if p})

    def head_commit(self) -> str | None:
        """HEAD's commit id, or None in a repository without commits."""
        res = self.run("rev-parse", "--verify", "-q", "HEAD", check=False)
        return (res.stdout.decode().strip() or None) if res.ok else None

    def recent_paths(self, commits: int = 100) -> list[str]:
        """Paths the last ``commits`` commits touched, most recent first (none without commits)."""
        res = self.run("log", f"-n{commits}", "--name-only", "-z", "--format=", check=False)
        if not res.ok:
            return []
        names = (os.fsdecode(p).strip("\n") for p in res.stdout.split(b"\0"))
        return list(dict.fromkeys(n for n in names if n))

    def has_head(self) -> bool:
        return self.head_commit() is not None

    def rev(self, name: str) -> str:
        """The commit id ``name`` (a branch, tag, ``HEAD~2``, ...) points at."""
        res = self.run("rev-parse", "--verify", "-q", f"{name}^{{commit}}", check=False)
        if not res.ok:
            raise GitError(
                f"{name!r} is not a commit in {self.root} (`git log --oneline` lists the commits)"
            )
        return res.stdout.decode().strip()

    def check_ignore(self, paths: Iterable[str], timeout: float | None = None) -> set[str]:
        """The subset of repo-relative ``paths`` that ignore rules exclude; tracked files never are (one call)."""
        wanted = sorted(set(paths))
        if not wanted:
            return set()
        res = self.run(
            "check-ignore",
            "-z",
            "--stdin",
            input="\0".join(wanted).encode("utf-8", "surrogateescape"),
            check=False,
            timeout=timeout,
        )
        if res.returncode not in (0, 1):  # 1: none of them is ignored
            raise GitError(f"git check-ignore failed in {self.root}: {res.message()}")
        return {os.fsdecode(p) for p in res.stdout.split(b"\0") if p}

    def cat_blobs(self, oids: Iterable[str], max_bytes: int) -> dict[str, bytes]:
        """Contents of blobs by object id (those over ``max_bytes`` left out unread), in two ``git cat-file``
        processes."""
        wanted = list(dict.fromkeys(o for o in oids if o and o != ZERO_OID))
        if not wanted:
            return {}
        sizes = self.run(
            "cat-file", "--batch-check", input="".join(f"{o}\n" for o in wanted).encode()
        ).stdout
        small = []
        for line in sizes.decode(errors="replace").splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[1] == "blob" and int(fields[2]) <= max_bytes:
                small.append(fields[0])
        if not small:
            return {}
        batch = self.run(
            "cat-file", "--batch", input="".join(f"{o}\n" for o in small).encode()
        ).stdout
        return _parse_batch(batch, small)

    def _git(self) -> Command:
        if self._command is None:
            self._command = _gitpython().cmd.Git(str(self.root))
        return self._command


def _subcommand(args: tuple[str, ...]) -> str:
    """The command's name for messages: ``grep`` in ``-c core.x=y grep -n ...``."""
    rest = iter(args)
    for arg in rest:
        if arg in ("-c", "-C"):
            next(rest, None)
        elif not arg.startswith("-"):
            return arg
    return ""


def _parse_batch(out: bytes, oids: list[str]) -> dict[str, bytes]:
    """``git cat-file --batch`` output: ``<oid> <type> <size>\\n<content>\\n`` per object, in request order."""
    blobs: dict[str, bytes] = {}
    pos = 0
    for oid in oids:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[1] == b"missing":
            continue
        size = int(header[2])
        blobs[oid] = out[pos : pos + size]
        pos += size + 1
    return blobs


@contextlib.contextmanager
def _stdin(data: bytes | None) -> Iterator[BinaryIO | None]:
    """``data`` as a file for git's stdin: GitPython hands ``istream`` to Popen as is, so it must be a real file,
    and git reading a file (rather than a pipe we feed) cannot deadlock against its own output."""
    if data is None:
        yield None
        return
    import tempfile

    with tempfile.TemporaryFile() as fh:
        fh.write(data)
        fh.seek(0)
        yield cast(BinaryIO, fh)


def _gitpython() -> ModuleType:
    """The ``git`` package (GitPython), imported now; its import fails when there is no git binary to run."""
    try:
        import git
    except ModuleNotFoundError as exc:
        if exc.name not in ("git", "gitdb", "smmap"):
            raise
        raise LocalpilotError(
            "GitPython is not installed in this environment (re-run ./install.sh)"
        ) from exc
    except ImportError as exc:  # GitPython's own check for the git binary (`git version`) failed
        raise GitError(NO_GIT) from exc
    return git


def _translate(exc: Exception, args: tuple[str, ...]) -> GitError:
    """GitPython's and the OS's failures to start or finish git, as one error that says what to do."""
    from git.exc import GitCommandNotFound

    if isinstance(exc, (GitCommandNotFound, FileNotFoundError)):
        return GitError(NO_GIT)
    what = f"git {_subcommand(args)}".rstrip()
    log.debug("%s could not run", what, exc_info=exc)
    return GitError(f"{what} could not run: {' '.join(str(exc).split())[:_MAX_MESSAGE]}")
