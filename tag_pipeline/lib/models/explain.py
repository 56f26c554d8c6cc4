"""Why a product got a tag: the words of its text that most support the tag, by occlusion.

Method (word occlusion):

1. The product's words come from its title, then its description cut the way
   ``text.product_texts`` cuts it (stripped, first ``MAX_DESCRIPTION_CHARS`` characters).
   Text is split at whitespace, ASCII brackets and separators (``<>()[]{}|/,;:!?``, so HTML
   such as ``<br/>`` splits too) and CJK/full-width punctuation (``，、。【】（）`` ...); each
   piece loses leading and trailing punctuation (``Leather.`` -> ``Leather``; ``Button-Down``
   stays one word) and a piece without a letter or digit is dropped.
2. Chinese titles are often written without spaces. A run of more than ``HAN_WORD_MAX_CHARS``
   (4) Han characters is split into overlapping 2-character words (``男士蓝色衬衫`` -> 男士,
   士蓝, 蓝色, 色衬, 衬衫): most Chinese words have two characters, a 3-character word such as
   连衣裙 is still mostly covered by one of them, and no segmenter dependency is needed. Shorter
   runs (``红色``, ``连衣裙``, ``真皮材质``) stay whole words. Two chosen words of one
   explanation never overlap (after 蓝色 the next word cannot be 士蓝 or 色衬).
3. Words are compared lower-cased (the tokenizer lower-cases) and a word written several times
   is one word: occluding it removes every occurrence, so ``Blue`` in the title and ``blue``
   in the description count together. Only the first ``max_words`` (default 24) distinct
   words, title first, are occluded: that caps the cost at ``max_words + 1`` texts scored per
   product, and words further on mostly lie past the tagger's ``seq_len`` tokens, where they
   cannot change a score.
4. For each word, the text with every occurrence replaced by a space is tokenized; a variant
   whose tokens equal the original's (the word lies past ``seq_len``) has support 0 and is not
   scored. The other variants are scored in batches through the tagger's backends and fusion
   (stages 2 and 3 of ``serving``) with the product's own image and image mask, so the image's
   contribution stays what it was and only the text changes (imageless products take the
   bundle's text-only shortcut).
5. The support of a word for a tag is the tag's original score minus its score without the
   word (same head and class). The explanation is up to ``top_k`` words whose support exceeds
   ``min_support``, best first; null when no word qualifies.

Occlusion measures each word alone: two words that each carry the tag (``red`` and ``红色``)
can both show low support, since the other one still holds the score up.

Tags the label space does not know (catalog or rule tags, rare tags) get null explanations:
the model has no score for them to explain.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl

from tag_pipeline.lib.models.backends import backend_scores, has_photo, linear_scores, prepare
from tag_pipeline.lib.models.bundle import COMPILE_MIN_ROWS, TaggerBundle
from tag_pipeline.lib.models.catalog_features import FEATURE_TEXT_COLUMN
from tag_pipeline.lib.models.fusion import PHOTO, combine
from tag_pipeline.lib.models.inputs import INPUT_COLUMNS, product_frame
from tag_pipeline.lib.models.text import MAX_DESCRIPTION_CHARS, product_texts

EXPLANATION_SEPARATOR = " | "
HAN_WORD_MAX_CHARS = 4
PRODUCT_COLUMNS = ("product_id", "title")
TAG_COLUMNS = ("product_id", "tag", "tag_type", "facet")
# Variant rows prepared at once, in batches: bounds the images and scores held in memory.
_BATCHES_PER_CHUNK = 16

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
# Split at whitespace, ASCII brackets and separators (HTML left in descriptions: "<br/>"),
# and CJK, full-width and general punctuation (not the full-width letters/digits). "-", "'",
# "." and "&" stay inside words (Li-Ning, T-shirt, 3.5mm); the trimming drops them at the ends.
_PIECE = re.compile(r"[^\s<>()\[\]{}|/\\,;:!?\"*=\u2000-\u206f\u3000-\u303f\uff01-\uff0f"
                    r"\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]+")
_TRIMMED = re.compile(r"\w(?:.*\w)?", re.S)
_LONG_HAN_RUN = re.compile(f"[{_HAN}]{{{HAN_WORD_MAX_CHARS + 1},}}")

TITLE, DESCRIPTION = 0, 1


@dataclass(frozen=True)
class Word:
    """A distinct word of a product's text and where it occurs.

    Attributes:
        text: The word as first written.
        spans: ``(field, start, end)`` of every occurrence; field is ``TITLE`` or
            ``DESCRIPTION``, start and end are character offsets in that field's text.
    """

    text: str
    spans: tuple[tuple[int, int, int], ...]


def _trimmed(text: str, start: int, end: int) -> list[tuple[str, int, int]]:
    """``text[start:end]`` without leading/trailing punctuation; [] if no letter or digit."""
    match = _TRIMMED.search(text, start, end)
    return [] if match is None else [(match.group(), match.start(), match.end())]


def split_words(text: str) -> list[tuple[str, int, int]]:
    """The words of one text as ``(word, start, end)``, in reading order.

    Splits at whitespace and CJK/full-width punctuation, trims punctuation off each piece and
    turns every run of more than ``HAN_WORD_MAX_CHARS`` Han characters into overlapping
    2-character words; the rest of such a piece (e.g. Latin letters before the run) stays a
    word of its own.
    """
    words: list[tuple[str, int, int]] = []
    for piece in _PIECE.finditer(text):
        for word, start, end in _trimmed(text, piece.start(), piece.end()):
            cursor = start
            for run in _LONG_HAN_RUN.finditer(text, start, end):
                words += _trimmed(text, cursor, run.start())
                words += [(text[i:i + 2], i, i + 2) for i in range(run.start(), run.end() - 1)]
                cursor = run.end()
            if cursor == start:
                words.append((word, start, end))
            else:
                words += _trimmed(text, cursor, end)
    return words


def product_words(title: str, description: str, max_words: int = 24) -> list[Word]:
    """The first ``max_words`` distinct words (lower-cased) of title, then description.

    ``description`` must already be cut as ``product_texts`` cuts it (see
    ``_cut_descriptions``); offsets refer to the strings given.
    """
    spans: dict[str, list[tuple[int, int, int]]] = {}
    first: dict[str, str] = {}
    for field_id, text in ((TITLE, title), (DESCRIPTION, description)):
        for word, start, end in split_words(text):
            key = word.lower()
            if key not in spans:
                if len(spans) == max_words:
                    continue
                spans[key], first[key] = [], word
            spans[key].append((field_id, start, end))
    return [Word(text=first[key], spans=tuple(s)) for key, s in spans.items()]


def occlude(title: str, description: str, word: Word) -> tuple[str, str]:
    """Title and description with every occurrence of ``word`` replaced by a space."""
    fields = [title, description]
    for field_id in (TITLE, DESCRIPTION):
        text, out, cursor = fields[field_id], [], 0
        for f, start, end in sorted(word.spans):
            if f == field_id:
                out += [text[cursor:start], " "]
                cursor = end
        fields[field_id] = "".join(out) + text[cursor:]
    return fields[TITLE], fields[DESCRIPTION]


def _overlaps(words: list[Word], width: int) -> np.ndarray:
    """(width, width) bool: words i and j share a character (every word overlaps itself)."""
    overlap = np.eye(width, dtype=bool)
    spans = sorted((f, s, e, i) for i, w in enumerate(words) for f, s, e in w.spans)
    for a, (field_a, _, end_a, word_a) in enumerate(spans):
        for field_b, start_b, _, word_b in spans[a + 1:]:
            if field_b != field_a or start_b >= end_a:
                break
            overlap[word_a, word_b] = overlap[word_b, word_a] = True
    return overlap


def _cut_descriptions(frame: pl.DataFrame) -> list[str]:
    """Descriptions as ``product_texts`` uses them: null -> '', stripped, cut to budget."""
    if "description" not in frame.columns:
        return [""] * frame.height
    return frame.select(pl.col("description").cast(pl.Utf8).fill_null("").str.strip_chars()
                        .str.slice(0, MAX_DESCRIPTION_CHARS))["description"].to_list()


@dataclass
class _Chunk:
    """Products of one chunk with their words, inputs and the occlusion variants to score."""

    inputs: dict[str, np.ndarray]  # backends.prepare of the products (original texts)
    words: np.ndarray  # (products, width) object: word text or None
    overlap: np.ndarray  # (products, width, width) bool
    variant_product: np.ndarray  # (variants,) product row of each variant
    variant_word: np.ndarray  # (variants,) word column of each variant
    variant_tokens: np.ndarray  # (variants, seq_len) token ids
    # the linear backend's scores of each variant, for a fused tagger
    variant_linear: dict[str, np.ndarray] | None = None


def _prepare(bundle: TaggerBundle, products: pl.DataFrame, max_words: int) -> _Chunk:
    titles = products["title"].cast(pl.Utf8).fill_null("").to_list()
    descriptions = _cut_descriptions(products)
    words = np.full((products.height, max_words), None, dtype=object)
    overlap = np.zeros((products.height, max_words, max_words), dtype=bool)
    var_product: list[int] = []
    var_word: list[int] = []
    var_titles: list[str] = []
    var_descriptions: list[str] = []
    for row, (title, description) in enumerate(zip(titles, descriptions, strict=True)):
        found = product_words(title, description, max_words)
        overlap[row] = _overlaps(found, max_words)
        for column, word in enumerate(found):
            words[row, column] = word.text
            occluded_title, occluded_description = occlude(title, description, word)
            var_product.append(row)
            var_word.append(column)
            var_titles.append(occluded_title)
            var_descriptions.append(occluded_description)
    variants = pl.DataFrame({"title": var_titles, "description": var_descriptions},
                            schema={"title": pl.Utf8, "description": pl.Utf8})
    inputs = prepare(bundle, products)
    if bundle.feature_columns:
        # the feature words are no words of the text: a variant keeps its product's
        words_of = product_frame(products, bundle.feature_columns)[FEATURE_TEXT_COLUMN]
        variants = variants.with_columns(words_of.gather(var_product).alias(FEATURE_TEXT_COLUMN)
                                         if var_product else
                                         pl.lit("", pl.Utf8).alias(FEATURE_TEXT_COLUMN))
    tokens = (bundle.tokenize(product_texts(variants)) if variants.height
              else np.zeros((0, bundle.config.seq_len), np.int32))
    linear = (linear_scores(bundle, variants) if bundle.fusion is not None and variants.height
              else None)
    return _Chunk(inputs=inputs, words=words, overlap=overlap,
                  variant_product=np.asarray(var_product, np.int64),
                  variant_word=np.asarray(var_word, np.int64), variant_tokens=tokens,
                  variant_linear=linear)


def _scores(bundle: TaggerBundle, x: dict) -> dict[str, np.ndarray]:
    """The tagger's scores of a batch: stages 2 and 3 of the serving path (the backends, then
    their fusion), as ``serving`` runs them."""
    return combine(bundle.fusion, backend_scores(bundle, x)[0], bundle.space, x.get("has_text"),
                   has_photo(x))


def _score_chunk(bundle: TaggerBundle, chunk: _Chunk, batch_size: int
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Original scores per head (products, classes), variant scores per head (variants,
    classes) and the (products, width) variant row of each word (-1: no word)."""
    x = chunk.inputs
    original = {name: s.astype(np.float64) for name, s in _scores(bundle, x).items()}
    vp = chunk.variant_product
    # A variant with the original's tokens scores exactly the original: support 0, not run.
    changed = (chunk.variant_tokens != x["tokens"][vp]).any(axis=1)
    if chunk.variant_linear is not None:
        # the linear backend reads the text itself, not the tokens: a changed text changes it
        changed |= np.stack([(np.abs(chunk.variant_linear[name] - x["linear"][name][vp]) > 0
                              ).any(axis=1) for name in chunk.variant_linear]).any(axis=0)
    changed = np.flatnonzero(changed)
    variant = {name: s[vp].copy() for name, s in original.items()}
    for start in range(0, len(changed), batch_size):
        rows = changed[start:start + batch_size]
        products = vp[rows]
        batch = {"tokens": chunk.variant_tokens[rows], "image": x["image"][products],
                 "image_mask": x["image_mask"][products]}
        if chunk.variant_linear is not None:
            batch["linear"] = {name: s[rows] for name, s in chunk.variant_linear.items()}
        if "embedding" in x:
            # the embedding backend keeps the product's own scores: encoding every variant
            # would cost about 25 ms each; the support comes from the other backends
            batch["embedding"] = {name: s[products] for name, s in x["embedding"].items()}
        if PHOTO in x:  # the photo is the product's own: so are its colours' scores
            batch[PHOTO] = {name: s[products] for name, s in x[PHOTO].items()}
        out = _scores(bundle, batch)
        for name, s in out.items():
            variant[name][rows] = s
    row_of = np.full(chunk.words.shape, -1, np.int64)
    row_of[vp, chunk.variant_word] = np.arange(len(vp))
    return original, variant, row_of


def _select(support: np.ndarray, overlap: np.ndarray, top_k: int, min_support: float
            ) -> tuple[np.ndarray, np.ndarray]:
    """Greedy best-first choice of up to ``top_k`` non-overlapping words per row.

    Args:
        support: (rows, width) support per word; -inf where there is no word.
        overlap: (rows, width, width) bool, the words' overlap for each row's product.

    Returns:
        Chosen word columns (rows, top_k) with -1 for none, and their supports.
    """
    support = support.copy()
    rows = np.arange(len(support))
    chosen = np.full((len(support), top_k), -1, np.int64)
    values = np.full((len(support), top_k), np.nan)
    for k in range(top_k):
        best = support.argmax(axis=1)
        value = support[rows, best]
        ok = value > min_support
        chosen[ok, k], values[ok, k] = best[ok], value[ok]
        support[overlap[rows, best]] = -np.inf
    return chosen, values


def _check_columns(frame: pl.DataFrame, required: tuple[str, ...], what: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"explain_tags: {what} frame lacks column(s) {missing}; "
                         f"has {frame.columns}")


def _tag_targets(bundle: TaggerBundle, tags: pl.DataFrame, products: pl.DataFrame
                 ) -> pl.DataFrame:
    """Per tag row (in order): its product's row, head index and class column (null when the
    label space does not know the tag)."""
    classes = pl.DataFrame(
        [(h.tag_type, c.facet, c.tag, i, j) for i, h in enumerate(bundle.space.heads)
         for j, c in enumerate(h.classes)],
        schema={"tag_type": pl.Utf8, "facet": pl.Utf8, "tag": pl.Utf8, "head": pl.Int64,
                "col": pl.Int64}, orient="row")
    ids = products.select(pl.col("product_id").cast(pl.Utf8),
                          product=pl.int_range(pl.len(), dtype=pl.Int64))
    keys = tags.select(pl.col(c).cast(pl.Utf8) for c in TAG_COLUMNS).with_row_index("row")
    unknown = keys.join(ids, on="product_id", how="anti")["product_id"].unique(
        maintain_order=True)
    if unknown.len():
        raise ValueError(f"explain_tags: {unknown.len()} tagged product id(s) are not in the "
                         f"products frame, e.g. {unknown.head(5).to_list()}")
    return (keys.join(ids, on="product_id", how="left")
            .join(classes, on=["tag_type", "facet", "tag"], how="left")
            .sort("row").select("product", "head", "col"))


def explain_tags(bundle: TaggerBundle, products: pl.DataFrame, tags: pl.DataFrame, *,
                 top_k: int = 2, max_words: int = 24, min_support: float = 0.01,
                 batch_size: int = 512) -> pl.DataFrame:
    """The words of each product's text that most support each of its tags (see the module
    docstring for the method).

    Args:
        bundle: The tagger whose scores are explained.
        products: product_id and title; optional description, image_path and image_bytes
            (as ``tag_frame`` reads them). Other columns are ignored.
        tags: The tags to explain: product_id, tag, tag_type, facet (e.g. ``tag_frame``
            output); other columns are kept.
        top_k: Most words per explanation.
        max_words: Distinct words occluded per product (the first ones, title first).
        min_support: A word explains a tag only when its support exceeds this.
        batch_size: Occluded texts per model batch.

    Returns:
        ``tags`` in its row order with two columns added (replaced if present):
        ``explanation`` (Utf8, the words joined by " | ", best first) and
        ``explanation_support`` (List(Float64), each word's score drop); both null when no
        word supports the tag, the product has no words or the label space lacks the tag.

    Raises:
        ValueError: A frame lacks a required column, product ids are null or duplicated, a
            tagged product is missing from ``products``, or an argument is out of range.
    """
    _check_columns(products, PRODUCT_COLUMNS, "products")
    _check_columns(tags, TAG_COLUMNS, "tags")
    for name, value in (("top_k", top_k), ("max_words", max_words), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"explain_tags: {name} must be at least 1, got {value}")
    if min_support < 0:
        raise ValueError(f"explain_tags: min_support must be at least 0, got {min_support}")
    ids = products["product_id"]
    if ids.null_count():
        raise ValueError("explain_tags: products column 'product_id' has null values")
    if ids.is_duplicated().any():
        raise ValueError(f"explain_tags: products column 'product_id' has duplicates, e.g. "
                         f"{ids.filter(ids.is_duplicated())[0]!r}")

    targets = _tag_targets(bundle, tags, products)
    explanations: list[str | None] = [None] * tags.height
    supports: list[list[float] | None] = [None] * tags.height
    known = targets.with_row_index("row").drop_nulls("head")
    needed = known["product"].unique().sort().to_numpy()
    if len(needed):
        # the feature columns too: the original scores are the tagger's, feature words included
        wanted = (*INPUT_COLUMNS, *(f.name for f in bundle.feature_columns), "tag_fields",
                  FEATURE_TEXT_COLUMN)
        columns = [c for c in dict.fromkeys(wanted) if c in products.columns]
        frame = products.select(columns)[needed]
        if len(needed) * (max_words + 1) >= COMPILE_MIN_ROWS:
            bundle.compile()
        size = max(1, _BATCHES_PER_CHUNK * batch_size // (max_words + 1))
        # Map each needed product to its row in `frame`.
        local = np.full(products.height, -1, np.int64)
        local[needed] = np.arange(len(needed))
        tag_row = known["row"].to_numpy()
        tag_product = local[known["product"].to_numpy()]
        tag_head = known["head"].to_numpy()
        tag_col = known["col"].to_numpy()
        heads = bundle.space.heads
        # One worker prepares the next chunk (texts, tokens, images) while this one is scored.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="explain_inputs") as pool:
            starts = list(range(0, frame.height, size))
            pending = pool.submit(_prepare, bundle, frame.slice(0, size), max_words)
            for n, start in enumerate(starts):
                chunk = pending.result()
                if n + 1 < len(starts):
                    pending = pool.submit(_prepare, bundle, frame.slice(starts[n + 1], size),
                                          max_words)
                original, variant, row_of = _score_chunk(bundle, chunk, batch_size)
                if not (row_of >= 0).any():  # no product of the chunk has a word to occlude
                    continue
                in_chunk = (tag_product >= start) & (tag_product < start + size)
                for h, head in enumerate(heads):
                    pick = np.flatnonzero(in_chunk & (tag_head == h))
                    if not len(pick):
                        continue
                    p, c = tag_product[pick] - start, tag_col[pick]
                    rows = row_of[p]  # (tags, width)
                    scored = variant[head.name][np.maximum(rows, 0), c[:, None]]
                    support = np.where(rows >= 0, original[head.name][p, c][:, None] - scored,
                                       -np.inf)
                    chosen, values = _select(support, chunk.overlap[p], top_k, min_support)
                    for i, (ws, vs) in enumerate(zip(chosen.tolist(), values.tolist(),
                                                     strict=True)):
                        kept = [w for w in ws if w >= 0]
                        if kept:
                            out = int(tag_row[pick[i]])
                            explanations[out] = EXPLANATION_SEPARATOR.join(
                                chunk.words[p[i], w] for w in kept)
                            supports[out] = [float(v) for v in vs[:len(kept)]]
    return tags.with_columns(
        pl.Series("explanation", explanations, dtype=pl.Utf8),
        pl.Series("explanation_support", supports, dtype=pl.List(pl.Float64)),
    )
