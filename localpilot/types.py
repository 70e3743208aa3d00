"""Plain data passed between layers."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Chunk:
    """A contiguous span of one file, the unit that is embedded and retrieved."""

    path: str  # repo-relative, POSIX separators
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    language: str
    symbol: str  # qualified, e.g. "Client.send"; "" for module-level code
    kind: str  # function, method, class, header, code, section, text, ...
    text: str
    truncated: bool = False  # longer than the embedder's token limit (tail not embedded)

    @property
    def content_hash(self) -> str:
        """Identity of what gets embedded, independent of where the chunk lives."""
        key = f"{self.language}\0{self.kind}\0{self.symbol}\0{self.text}"
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def chunk_id(self) -> str:
        key = f"{self.path}\0{self.start_line}\0{self.end_line}\0{self.content_hash}"
        return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()

    def embed_text(self) -> str:
        """What the embedder sees: location and symbol as context, then the code."""
        head = f"{self.path} {self.symbol}".rstrip()
        return f"{head}\n{self.text}"


@dataclass(frozen=True)
class Hit:
    """One search result."""

    path: str
    start_line: int
    end_line: int
    symbol: str
    language: str
    kind: str
    score: float
    snippet: str
    explain: dict[str, object] | None = None  # per-channel ranks and scores, when asked for

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        if self.explain is None:
            out.pop("explain")
        return out


@dataclass
class IndexStats:
    """What one indexing run did."""

    files_seen: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    files_skipped: int = 0
    files_removed: int = 0
    chunks_written: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_deleted: int = 0
    chunks_truncated: int = 0
    seconds: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        rate = self.chunks_embedded / self.seconds if self.seconds else 0.0
        return (
            f"indexed {self.files_indexed} files ({self.files_unchanged} unchanged, "
            f"{self.files_skipped} skipped, {self.files_removed} removed): "
            f"{self.chunks_written} chunks written, {self.chunks_embedded} embedded "
            f"({rate:.1f}/s), {self.chunks_reused} reused, {self.chunks_deleted} deleted "
            f"in {self.seconds:.1f}s"
            + (
                f"; {self.chunks_truncated} chunks longer than the embedder's window "
                "(tail not embedded)"
                if self.chunks_truncated
                else ""
            )
        )


@dataclass(frozen=True)
class Progress:
    """A progress report from the indexer to whoever shows it."""

    files_total: int
    files_done: int
    chunks_done: int
    chunks_embedded: int
    path: str = ""
    stage: str = "reading"  # reading (files -> searchable by keyword) | embedding (pending chunks -> vectors)
    vectors_done: int = 0
    vectors_total: int = 0
