"""The serving path: raw products in, tags out, in one direction.

Everything that tags products goes through this module: ``product_tags`` (``tags.tagging``),
the command line (``tag``, ``suggest``, via ``cli.models``), the pyfunc models and so REST
(``pyfunc``, ``refiner_pyfunc``), the evaluation of a labelled file (``cli.evaluation``) and
the refiner's training inputs (``tagger_outputs``). A batch of products goes through the
stages in order, each a module that the next one calls and none calls back:

1. inputs (``inputs``): the product frame, tokens, images and masks;
2. backends (``backends``): the CNN + BiLSTM (with its ``fused`` product embedding), the
   calibrated linear n-gram backend and the embedding backend;
3. fusion (``fusion.combine``): the tagger's scores;
4. refiner (``refiner.refine_scores``), where one applies;
5. thresholds and hierarchy (``scoring.apply_thresholds``, or ``refiner.decide`` for refined
   scores): 0/1 per tag, the category levels decoded jointly as a valid taxonomy path;
6. tags (``tag``, here): one row per product and tag;
7. explanations (``explain.explain_tags``), where asked for.

``test_structure`` checks that no stage module imports this one or a later stage. Reading the
next batch's inputs and text backends (stages 1 and 2, a worker thread) overlaps with the
network's forward pass of the current one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import polars as pl

from tag_pipeline.lib.models.backends import backend_scores, has_photo, prepare
from tag_pipeline.lib.models.bundle import COMPILE_MIN_ROWS, TaggerBundle
from tag_pipeline.lib.models.explain import explain_tags
from tag_pipeline.lib.models.fusion import combine
from tag_pipeline.lib.models.inputs import product_frame
from tag_pipeline.lib.models.refiner import Refiner, decide, refine_scores
from tag_pipeline.lib.models.scoring import apply_thresholds, decided_tags, space_classes

TAG_SCHEMA = {"product_id": pl.Utf8, "tag": pl.Utf8, "tag_type": pl.Utf8, "facet": pl.Utf8,
              "score": pl.Float64}
# ``source``: "model" for a tag the tagger alone gives, "refiner" for one only the refiner does
SOURCED_SCHEMA = {**TAG_SCHEMA, "source": pl.Utf8}

_T = TypeVar("_T")
_R = TypeVar("_R")


def _ahead(function: Callable[[_T], _R], items: Iterable[_T]) -> Iterator[tuple[_T, _R]]:
    """``(item, function(item))`` in order, the next item's computed on a worker thread while
    the caller works on the current one (Pillow, the tokenizer and scikit-learn release the
    GIL); at most one result is held ahead."""
    items = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tagger_inputs") as pool:
        item = next(items, None)
        pending = pool.submit(function, item) if item is not None else None
        while pending is not None:
            current, result = item, pending.result()
            item = next(items, None)
            pending = pool.submit(function, item) if item is not None else None
            yield current, result


@dataclass
class ScoredBatch:
    """One batch after stages 1 to 3.

    Attributes:
        frame: The batch's products (``inputs.product_frame``).
        inputs: Its model inputs and text backends' scores (``backends.prepare``).
        scores: The tagger's scores per head (fused for a fused tagger).
        features: The network's ``fused`` product embeddings (None: the model lacks the layer).
    """

    frame: pl.DataFrame
    inputs: dict[str, Any]
    scores: dict[str, np.ndarray]
    features: np.ndarray | None

    @property
    def usable(self) -> np.ndarray:
        """Per product: whether it has usable text or a readable image to be tagged from."""
        return self.inputs["has_text"] | (self.inputs["image_mask"][:, 0] > 0)


def scored_batches(bundle: TaggerBundle, products: pl.DataFrame, batch_size: int = 512
                   ) -> Iterator[ScoredBatch]:
    """Stages 1 to 3 (inputs, backends, fusion) over products, ``batch_size`` at a time.

    Args:
        bundle: The tagger.
        products: Raw products (``inputs.product_frame``: ``title`` required; optional
            ``product_id``, ``description``, ``image_path``, ``image_bytes`` and the
            bundle's feature columns).
        batch_size: Products per model batch; images are read batch by batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    frame = product_frame(products, bundle.feature_columns)
    if frame.height >= COMPILE_MIN_ROWS:
        bundle.compile()
    chunks = (frame.slice(start, batch_size) for start in range(0, frame.height, batch_size))
    for chunk, x in _ahead(lambda c: prepare(bundle, c), chunks):
        backends, features = backend_scores(bundle, x)
        yield ScoredBatch(frame=chunk, inputs=x, features=features,
                          scores=combine(bundle.fusion, backends, bundle.space, x["has_text"],
                                         has_photo(x)))


def _empty_scores(bundle: TaggerBundle) -> dict[str, list[np.ndarray]]:
    return {h.name: [np.zeros((0, h.size), np.float32)] for h in bundle.space.heads}


def _features(batch: ScoredBatch) -> np.ndarray:
    """The batch's product embeddings, the refiner's input; an error without them."""
    if batch.features is None:
        raise ValueError("the tagger model has no layer named 'fused' to take the product "
                         "embedding from, which the refiner reads")
    return batch.features


def _check_refiner(bundle: TaggerBundle, refiner: Refiner | None) -> None:
    if refiner is not None and refiner.space != bundle.space:
        raise ValueError("the refiner was trained on another label space than the tagger "
                         f"bundle's (heads {refiner.space.head_names} vs "
                         f"{bundle.space.head_names})")


def product_scores(bundle: TaggerBundle, products: pl.DataFrame, batch_size: int = 512
                   ) -> dict[str, np.ndarray]:
    """The tagger's scores per head name (products, classes), in frame order."""
    scores = _empty_scores(bundle)
    for batch in scored_batches(bundle, products, batch_size):
        for name, s in batch.scores.items():
            scores[name].append(np.asarray(s, np.float32))
    return {name: np.concatenate(parts) for name, parts in scores.items()}


def tagger_outputs(bundle: TaggerBundle, products: pl.DataFrame, batch_size: int = 512
                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """What the refiner reads, in frame order: the network's ``fused`` product embeddings
    (products, fused_dim) and the tagger's scores per head name (the fused scores of a fused
    tagger), exactly as ``tag`` computes them."""
    features: list[np.ndarray] = []
    scores = _empty_scores(bundle)
    for batch in scored_batches(bundle, products, batch_size):
        features.append(_features(batch))
        for name, s in batch.scores.items():
            scores[name].append(np.asarray(s, np.float32))
    dim = int(bundle.config.fused_dim)
    return (np.concatenate([np.zeros((0, dim), np.float32), *features]),
            {name: np.concatenate(parts) for name, parts in scores.items()})


def _decisions(bundle: TaggerBundle, refiner: Refiner | None, batch: ScoredBatch
               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Stages 4 and 5: (final scores, final 0/1 decisions, the tagger's own decisions)."""
    tagger = apply_thresholds(batch.scores, bundle.thresholds, bundle.space)
    if refiner is None:
        return batch.scores, tagger, tagger
    refined = refine_scores(refiner, _features(batch), batch.scores)
    return refined, decide(refiner, refined, refiner.config.repair), tagger


def product_decisions(bundle: TaggerBundle, products: pl.DataFrame,
                      refiner: Refiner | None = None, batch_size: int = 512
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """What ``tag`` decides, as arrays in frame order: the final scores per head (refined
    where a refiner applies) and the 0/1 decisions per head (all 0 for a product with
    neither usable text nor a readable image, which ``tag`` gives no row). For metrics of
    the model as served (``tag-pipeline eval``)."""
    _check_refiner(bundle, refiner)
    scores = _empty_scores(bundle)
    decisions = {h.name: [np.zeros((0, h.size), np.uint8)] for h in bundle.space.heads}
    for batch in scored_batches(bundle, products, batch_size):
        final, decided, _ = _decisions(bundle, refiner, batch)
        for name in final:
            scores[name].append(np.asarray(final[name], np.float32))
            decisions[name].append(np.where(batch.usable[:, None], decided[name], 0)
                                   .astype(np.uint8))
    return ({name: np.concatenate(parts) for name, parts in scores.items()},
            {name: np.concatenate(parts) for name, parts in decisions.items()})


def tag(bundle: TaggerBundle, products: pl.DataFrame, refiner: Refiner | None = None, *,
        batch_size: int = 512, explain: bool = False, explanation_words: int = 2,
        explanation_max_words: int = 16) -> pl.DataFrame:
    """Tags of raw products, one row per (product, tag): the whole serving path.

    Args:
        bundle: The tagger.
        products: As for ``scored_batches``. Other columns are ignored; a missing or
            undecodable image is ignored.
        refiner: The refiner to apply to the tagger's scores, or None.
        batch_size: Products per model batch.
        explain: Add the words that support each tag (``explain.explain_tags``): columns
            ``explanation`` and ``explanation_support``.
        explanation_words: Words kept per explanation.
        explanation_max_words: Words of a product tried by occlusion (title first).

    Returns:
        Columns ``SOURCED_SCHEMA`` (the score is the refined one where a refiner applies),
        products in input order and within a product heads in model order, best score first.
        A product whose scores pass no threshold has no row, nor has a product with neither
        usable text (a title or description that is not blank) nor a readable image: there is
        nothing to tag it from (``untagged_products`` gives it the reason
        ``no_text_or_image``).
    """
    space = bundle.space
    _check_refiner(bundle, refiner)
    classes = pl.DataFrame(space_classes(space), orient="row",
                           schema={"tag_type": pl.Utf8, "facet": pl.Utf8, "tag": pl.Utf8})
    parts: list[pl.DataFrame] = []
    for batch in scored_batches(bundle, products, batch_size):
        scores, decisions, tagger = _decisions(bundle, refiner, batch)
        rows, cls, values = decided_tags(decisions, scores, space)
        keep = batch.usable[rows]
        rows, cls, values = rows[keep], cls[keep], values[keep]
        by_tagger = np.concatenate([tagger[h.name] for h in space.heads], axis=1)[rows, cls]
        parts.append(pl.concat([
            pl.DataFrame({"product_id": batch.frame["product_id"].gather(rows)}),
            classes.select(pl.all().gather(cls)),
            pl.DataFrame({"score": values.astype(np.float64),
                          "source": np.where(by_tagger > 0, "model", "refiner")},
                         schema={"score": pl.Float64, "source": pl.Utf8}),
        ], how="horizontal"))
    tags = (pl.concat(parts).select(list(SOURCED_SCHEMA)).cast(SOURCED_SCHEMA) if parts
            else pl.DataFrame(schema=SOURCED_SCHEMA))
    if not explain:
        return tags
    if not tags.height:
        return tags.with_columns(explanation=pl.lit(None, pl.Utf8),
                                 explanation_support=pl.lit(None, pl.List(pl.Float64)))
    return explain_tags(bundle, product_frame(products, bundle.feature_columns), tags,
                        top_k=explanation_words, max_words=explanation_max_words,
                        batch_size=batch_size)


def tag_frame(bundle: TaggerBundle, products: pl.DataFrame, batch_size: int = 512
              ) -> pl.DataFrame:
    """The tagger's own tags (``tag`` without a refiner), columns ``TAG_SCHEMA``."""
    return tag(bundle, products, batch_size=batch_size).drop("source")
