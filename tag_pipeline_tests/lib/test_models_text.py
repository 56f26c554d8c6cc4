"""Product text, the WordPiece vocabulary (CJK characters as tokens) and the tokenizer."""

from __future__ import annotations

import polars as pl
import pytest
import tensorflow as tf

from tag_pipeline.lib.models.text import (
    RESERVED_TOKENS,
    learn_vocabulary,
    make_tokenizer,
    product_texts,
)
from tag_pipeline_tests.lib.models_data import products_frame


def test_product_text_joins_title_and_cut_description():
    frame = pl.DataFrame({"title": ["Blue Shirt", "男士衬衫"], "description": ["x" * 50, None]})
    texts = product_texts(frame, max_description_chars=10)
    assert texts == ["Blue Shirt [SEP] " + "x" * 10, "男士衬衫"]
    with pytest.raises(ValueError, match="lacks column"):
        product_texts(pl.DataFrame({"title": ["a"]}))


def test_vocabulary_has_cjk_characters_and_english_word_pieces():
    # repeated: the learner keeps only pieces seen about 10 times or more
    texts = product_texts(products_frame()) * 4
    vocab = learn_vocabulary(texts, vocab_size=300)
    assert tuple(vocab[:4]) == RESERVED_TOKENS
    assert {"衬", "衫", "鞋", "男", "女"} <= set(vocab)
    assert {"shirt", "men", "women"} <= set(vocab)
    assert any(t.startswith("##") for t in vocab)
    # the literal [SEP] in the texts is not learned as pieces of its own
    assert "sep" not in vocab
    # the same from a dataset of strings
    assert learn_vocabulary(tf.data.Dataset.from_tensor_slices(texts), 300) == vocab


def test_tokenizer_pads_truncates_and_keeps_sep():
    vocab = learn_vocabulary(product_texts(products_frame()) * 4, vocab_size=300)
    tokenizer = make_tokenizer(vocab, seq_len=8)
    texts = tf.constant(["男士衬衫 [SEP] shirt", "Men Blue Shirt " * 5])
    ids = tf.convert_to_tensor(tokenizer(texts))
    assert ids.shape == (2, 8)
    first = ids[0].numpy().tolist()
    assert first[:6] == [vocab.index(t) for t in ["男", "士", "衬", "衫", "[SEP]", "shirt"]]
    assert first[6:] == [0, 0]
    assert 0 not in ids[1].numpy().tolist()
