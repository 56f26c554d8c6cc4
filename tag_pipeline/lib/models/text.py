"""Product text for the tagger: one string per product, a WordPiece vocabulary and tokenizer.

WordPiece with ``split_on_cjk=True`` makes every Han character a token and splits English
into word pieces, so one vocabulary serves Chinese, English and mixed titles without a
Chinese word segmenter. tensorflow and keras_hub are imported inside the functions that need
them, so ``product_texts`` stays cheap to import (the TF-IDF baseline uses it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import polars as pl

from tag_pipeline.lib.models.catalog_features import FEATURE_TEXT_COLUMN

if TYPE_CHECKING:
    import keras_hub
    import tensorflow as tf

RESERVED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
SEPARATOR = " [SEP] "
MAX_DESCRIPTION_CHARS = 600
_RESERVED_PATTERN = r"\[(PAD|UNK|CLS|SEP)\]"


def product_texts(products: pl.DataFrame,
                  max_description_chars: int = MAX_DESCRIPTION_CHARS) -> list[str]:
    """``title [SEP] description`` per product; the description is cut to a character budget.

    The tokenizer truncates to ``seq_len`` tokens anyway; cutting characters first keeps long
    descriptions from costing tokenization time. An empty description leaves the title alone.
    When the frame has feature words (``catalog_features.FEATURE_TEXT_COLUMN``), they follow
    the title (``title features [SEP] description``), so a long description cannot push them
    past ``seq_len``.
    """
    missing = [c for c in ("title", "description") if c not in products.columns]
    if missing:
        raise ValueError(f"products frame lacks column(s) {missing}; has {products.columns}")
    description = pl.col("description").fill_null("").str.strip_chars().str.slice(
        0, max_description_chars)
    title = pl.col("title").fill_null("")
    if FEATURE_TEXT_COLUMN in products.columns:
        words = pl.col(FEATURE_TEXT_COLUMN).fill_null("")
        title = pl.when(words == "").then(title).otherwise(title + " " + words)
    text = (pl.when(description == "")
            .then(title)
            .otherwise(title + SEPARATOR + description))
    return products.select(text.alias("text"))["text"].to_list()


def learn_vocabulary(texts: Iterable[str] | tf.data.Dataset, vocab_size: int = 8000) -> list[str]:
    """A lower-cased WordPiece vocabulary (CJK characters as single tokens).

    Args:
        texts: Training texts, as strings or a ``tf.data.Dataset`` of scalar strings. Literal
            reserved tokens such as ``[SEP]`` are removed before counting.
        vocab_size: Largest vocabulary size, reserved tokens included.

    Returns:
        The vocabulary; ``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]`` take ids 0-3. The learner
        (tensorflow-text's, under keras_hub) keeps a piece only when it occurs about 10 times
        or more, so a tiny corpus yields little beyond single characters.
    """
    import keras_hub
    import tensorflow as tf

    if isinstance(texts, tf.data.Dataset):
        dataset = texts
    else:
        # compute_word_piece_vocabulary reads a Python list as file names: give it a dataset.
        strings = list(texts)
        if not strings:
            raise ValueError("learn_vocabulary needs at least one text")
        dataset = tf.data.Dataset.from_tensor_slices(tf.constant(strings, dtype=tf.string))
    dataset = dataset.map(lambda s: tf.strings.regex_replace(s, _RESERVED_PATTERN, " "))
    vocab = keras_hub.tokenizers.compute_word_piece_vocabulary(
        dataset.batch(1024),
        vocabulary_size=vocab_size,
        lowercase=True,
        split_on_cjk=True,
        reserved_tokens=list(RESERVED_TOKENS),
    )
    if list(vocab[: len(RESERVED_TOKENS)]) != list(RESERVED_TOKENS):
        raise ValueError(f"vocabulary does not start with {RESERVED_TOKENS}: {vocab[:4]}")
    return list(vocab)


def make_tokenizer(vocab: list[str], seq_len: int) -> keras_hub.tokenizers.WordPieceTokenizer:
    """A WordPiece tokenizer padding/truncating to ``seq_len`` ids ([PAD] = 0).

    ``[SEP]`` written in the text maps to its reserved id instead of being split into pieces.
    """
    import keras_hub

    if seq_len < 1:
        raise ValueError(f"seq_len must be at least 1, got {seq_len}")
    return keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=list(vocab),
        sequence_length=seq_len,
        lowercase=True,
        split_on_cjk=True,
        oov_token="[UNK]",
        special_tokens=["[SEP]"],
        special_tokens_in_strings=True,
    )
