"""A tiny synthetic bilingual catalog for the model tests: products and labels frames."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from PIL import Image

# (title, description, lang, articleType, gender, baseColour, usage, occasions, styles)
ROWS = [
    ("Roadster Men Blue Printed Shirt", "cotton shirt", "en", "Shirts", "Men", "Blue",
     "Casual", ["party"], ["Printed"]),
    ("Men Black Slim Fit Shirt", "", "en", "Shirts", "Men", "Black", "Formal", ["office"],
     ["Slim Fit"]),
    ("男士蓝色印花衬衫", "纯棉", "zh", "Shirts", "Men", "Blue", "Casual", ["party"], ["Printed"]),
    ("男士黑色修身衬衫", "", "zh", "Shirts", "Men", "Black", "Formal", ["office"],
     ["Slim Fit"]),
    ("Women Red Printed Shirt", "soft", "en", "Shirts", "Women", "Red", "Casual",
     ["party", "travel"], ["Printed"]),
    ("女士红色衬衫 Printed", "", "mixed", "Shirts", "Women", "Red", "Casual", ["travel"],
     ["Printed"]),
    ("Women Blue Slim Fit Shirt", "", "en", "Shirts", "Women", "Blue", "Formal", ["office"],
     ["Slim Fit"]),
    ("女士蓝色衬衫", "修身 office", "mixed", "Shirts", "Women", "Blue", "Formal", ["office"],
     []),
    ("Nike Men Black Running Shoes", "light", "en", "Shoes", "Men", "Black", "Sports",
     ["travel"], []),
    ("Men Blue Sports Shoes", "", "en", "Shoes", "Men", "Blue", "Sports", ["travel"], []),
    ("男士黑色运动鞋", "轻便", "zh", "Shoes", "Men", "Black", "Sports", ["travel"], []),
    ("男士蓝色跑鞋", "", "zh", "Shoes", "Men", "Blue", "Sports", [], []),
    ("Women Red Casual Shoes", "", "en", "Shoes", "Women", "Red", "Casual", ["party"], []),
    ("女士红色休闲鞋", "", "zh", "Shoes", "Women", "Red", "Casual", ["party"], []),
    ("Women Black Formal Shoes", "leather", "en", "Shoes", "Women", "Black", "Formal",
     ["office"], []),
    ("女士黑色皮鞋 Formal", "", "mixed", "Shoes", "Women", "Black", "Formal", ["office"], []),
    ("Titan Men Black Watch", "steel", "en", "Watches", "Men", "Black", "Formal", ["office"],
     []),
    ("Men Blue Analog Watch", "", "en", "Watches", "Men", "Blue", "Casual", ["travel"], []),
    ("男士黑色手表", "钢带", "zh", "Watches", "Men", "Black", "Formal", ["office"], []),
    ("男士蓝色手表", "", "zh", "Watches", "Men", "Blue", "Casual", [], []),
    ("Women Red Printed Watch", "", "en", "Watches", "Women", "Red", "Casual", ["party"],
     ["Printed"]),
    ("女士红色手表", "", "zh", "Watches", "Women", "Red", "Casual", ["party"], []),
    ("Women Black Watch", "", "en", "Watches", "Women", "Black", "Formal", ["office"], []),
    ("女士黑色手表 Watch", "", "mixed", "Watches", "Women", "Black", "Formal", ["office"], []),
    ("Men Blue Printed Shirt", "", "en", "Shirts", "Men", "Blue", "Casual", ["party"],
     ["Printed"]),
    ("Men Black Shoes", "", "en", "Shoes", "Men", "Black", None, [], []),
    ("Women Red Watch", "", "en", "Watches", "Women", None, "Casual", ["party"], []),
    ("男士衬衫", "", "zh", "Shirts", "Men", None, None, [], []),
    ("Blue Umbrella", "rain", "en", "Umbrellas", None, "Blue", None, ["travel"], []),
    ("女士印花修身衬衫", "", "zh", "Shirts", "Women", "Red", "Casual", ["party"],
     ["Printed", "Slim Fit"]),
]


def products_frame(image_paths: dict[int, str | None] | None = None) -> pl.DataFrame:
    """The products; ``image_paths`` maps a row number to its image path (others: none)."""
    image_paths = image_paths or {}
    return pl.DataFrame({
        "product_id": [f"p{i:03d}" for i in range(len(ROWS))],
        "title": [r[0] for r in ROWS],
        "description": [r[1] for r in ROWS],
        "text_lang": [r[2] for r in ROWS],
        "image_path": [image_paths.get(i) for i in range(len(ROWS))],
    }, schema={"product_id": pl.Utf8, "title": pl.Utf8, "description": pl.Utf8,
               "text_lang": pl.Utf8, "image_path": pl.Utf8})


def labels_frame() -> pl.DataFrame:
    """Labels as the product_labels table gives them (parent and level unused here)."""
    rows = []
    for i, (_, _, _, article, gender, colour, usage, occasions, styles) in enumerate(ROWS):
        pid = f"p{i:03d}"
        rows.append((pid, article, "category", "articleType"))
        if gender:
            rows.append((pid, gender, "attribute", "gender"))
        if colour:
            rows.append((pid, colour, "attribute", "baseColour"))
        if usage:
            rows.append((pid, usage, "scene", "usage"))
        rows += [(pid, o, "scene", "occasion") for o in occasions]
        rows += [(pid, s, "style", "style") for s in styles]
    frame = pl.DataFrame(rows, schema={"product_id": pl.Utf8, "tag": pl.Utf8,
                                       "tag_type": pl.Utf8, "facet": pl.Utf8}, orient="row")
    return frame.with_columns(parent=pl.lit(None, pl.Utf8), level=pl.lit(1))


def write_png(path: Path, colour: tuple[int, int, int], size: int = 16) -> str:
    """A solid-colour PNG image; returns its path as a string."""
    Image.new("RGB", (size, size), colour).save(path, format="PNG")
    return str(path)


# the tiny tagger the model tests share (conftest's ``tiny_tagger``): one epoch, seconds
TINY_TAGGER = {"embedding_dim": 8, "lstm_units": 8, "cnn_filters": (4, 4, 4), "fused_dim": 16,
               "image_size": 16, "seq_len": 16, "epochs": 1, "batch_size": 8,
               "vocab_size": 300}
TRAIN_ROWS = 24  # the first 24 products train it, the other 6 tune its thresholds
AS_TRAINED = "as_trained.npz"  # its scores and thresholds before it was saved


def train_tiny_tagger(image_paths: dict[int, str | None]):  # -> bundle.TaggerBundle
    """One epoch of a tiny tagger on the bilingual catalog (photos at ``image_paths``),
    thresholds tuned on validation. Keras is imported here, not when the module is."""
    from tag_pipeline.lib.models.bundle import TaggerBundle
    from tag_pipeline.lib.models.dataset import make_dataset
    from tag_pipeline.lib.models.labels import build_label_space, encode_labels, sample_weights
    from tag_pipeline.lib.models.serving import product_scores
    from tag_pipeline.lib.models.tagger import TaggerConfig, train_tagger, tune_thresholds
    from tag_pipeline.lib.models.text import learn_vocabulary, product_texts

    config = TaggerConfig(**TINY_TAGGER)
    products, labels = products_frame(image_paths), labels_frame()
    train, val = products[:TRAIN_ROWS], products[TRAIN_ROWS:]
    space = build_label_space(labels, train["product_id"], min_support=3)
    vocab = learn_vocabulary(product_texts(train), config.vocab_size)
    bundle = TaggerBundle(model=None, space=space, vocab=vocab, thresholds={}, config=config)
    y_train = encode_labels(labels, train["product_id"], space)
    y_val = encode_labels(labels, val["product_id"], space)
    train_ds = make_dataset(train, y_train, bundle.tokenizer, config.image_size,
                            config.batch_size, shuffle=True, seed=1,
                            sample_weights=sample_weights(y_train, space))
    val_ds = make_dataset(val, y_val, bundle.tokenizer, config.image_size, config.batch_size,
                          sample_weights=sample_weights(y_val, space))
    bundle.model, _ = train_tagger(train_ds, val_ds, space, config)
    bundle.thresholds = tune_thresholds(product_scores(bundle, val), y_val, space)
    return bundle
