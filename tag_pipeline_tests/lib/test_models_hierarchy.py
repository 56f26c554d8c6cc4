"""Category taxonomies: chains found in the labels, valid paths, joint decoding, validity."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import polars as pl
import pytest

from tag_pipeline.lib.models.labels import (
    SIGMOID,
    SOFTMAX,
    LabelSpace,
    Taxonomy,
    build_label_space,
    encode_labels,
    sample_weights,
)
from tag_pipeline.lib.models.scoring import (
    apply_thresholds,
    given_tags,
    path_validity,
    scores_to_tags,
)

L1, L2, L3 = "category:l1", "category:l2", "category:l3"

# product: (l1, l2, l3); None where the product's path stops. Boots, Kurtas and Scarves have one
# product each, rare at min_support=2.
CATALOG = {
    "a1": ("Apparel", "Tops", "Shirts"), "a2": ("Apparel", "Tops", "Shirts"),
    "a3": ("Apparel", "Tops", "Tshirts"), "a4": ("Apparel", "Tops", "Tshirts"),
    "a5": ("Apparel", "Tops", "Kurtas"), "a6": ("Apparel", "Scarves", None),
    "b1": ("Apparel", "Bottoms", None), "b2": ("Apparel", "Bottoms", None),
    "f1": ("Footwear", "Shoes", "Sneakers"), "f2": ("Footwear", "Shoes", "Sneakers"),
    "f3": ("Footwear", "Shoes", "Boots"),
}
USAGE = {"a1": "Casual", "a2": "Formal", "a3": "Casual", "b1": "Formal", "f1": "Casual"}


def hierarchy_labels() -> pl.DataFrame:
    """product_labels rows: the l1 > l2 > l3 path and a plain category facet, usage."""
    rows = []
    for pid, path in CATALOG.items():
        for level, tag in enumerate(path, start=1):
            if tag is not None:
                parent = path[level - 2] if level > 1 else None
                rows.append((pid, tag, "category", f"l{level}", level, parent))
    rows += [(pid, tag, "category", "usage", 1, None) for pid, tag in USAGE.items()]
    return pl.DataFrame(rows, orient="row", schema={
        "product_id": pl.Utf8, "tag": pl.Utf8, "tag_type": pl.Utf8, "facet": pl.Utf8,
        "level": pl.Int64, "parent": pl.Utf8})


@pytest.fixture
def space() -> LabelSpace:
    return build_label_space(hierarchy_labels(), list(CATALOG), min_support=2)


def tags_of(space: LabelSpace, head: str) -> list[str]:
    return [c.tag for c in space.head(head).classes]


def test_chain_is_found_and_paths_come_from_training(space):
    assert tags_of(space, L1) == ["Apparel", "Footwear"]
    assert tags_of(space, L2) == ["Bottoms", "Shoes", "Tops"]
    assert tags_of(space, L3) == ["Shirts", "Sneakers", "Tshirts"]
    assert space.head("category:usage").kind == SOFTMAX
    # usage is a category facet too, but no facet's parent tags point into it
    (taxonomy,) = space.taxonomies
    assert taxonomy.tag_type == "category" and taxonomy.heads == (L1, L2, L3)
    # Apparel > Bottoms ends at level 2; (Apparel,) from the rare Scarves, (Footwear, Shoes)
    # from the rare Boots and (Apparel, Tops) from the rare Kurtas are prefixes, left out
    assert taxonomy.paths == ((0, 0, -1), (0, 2, 0), (0, 2, 2), (1, 1, 1))


def test_paths_use_only_training_products():
    space = build_label_space(hierarchy_labels(), ["a1", "a2", "b1", "b2", "f1", "f2"],
                              min_support=2)
    assert space.taxonomies[0].paths == ((0, 0, -1), (0, 2, 0), (1, 1, 1))
    assert tags_of(space, L3) == ["Shirts", "Sneakers"]


def test_no_level_and_parent_columns_no_taxonomy():
    labels = hierarchy_labels()
    plain = build_label_space(labels.drop("level", "parent"), list(CATALOG), min_support=2)
    assert plain.taxonomies == ()
    assert plain.heads == build_label_space(labels, list(CATALOG), min_support=2).heads


def test_chain_stops_at_a_facet_that_is_not_a_softmax_head():
    # a second level-3 tag on a1 makes l3 multi-valued: it joins the category sigmoid head
    extra = pl.DataFrame([("a1", "Tshirts", "category", "l3", 3, "Tops")], orient="row",
                         schema=hierarchy_labels().schema)
    space = build_label_space(pl.concat([hierarchy_labels(), extra]), list(CATALOG),
                              min_support=2)
    assert space.head("category").kind == SIGMOID
    (taxonomy,) = space.taxonomies
    assert taxonomy.heads == (L1, L2)
    assert taxonomy.paths == ((0, 0), (0, 2), (1, 1))
    # l2 in the sigmoid head too: a chain of one head is no taxonomy
    more = pl.DataFrame([("b1", "Tops", "category", "l2", 2, "Apparel")], orient="row",
                        schema=hierarchy_labels().schema)
    space = build_label_space(pl.concat([hierarchy_labels(), extra, more]), list(CATALOG),
                              min_support=2)
    assert space.taxonomies == ()


def test_levels_no_path_reaches_are_cut_off():
    # Silk and Wool are supported, but only under level-2 tags with one product each
    paths = {"t1": ("Apparel", "Tops"), "t2": ("Apparel", "Tops"), "b1": ("Apparel", "Bottoms"),
             "b2": ("Apparel", "Bottoms"), "f1": ("Footwear", "Shoes"),
             "f2": ("Footwear", "Shoes"), "x1": ("Apparel", "Wraps", "Silk"),
             "x2": ("Apparel", "Stoles", "Silk"), "x3": ("Apparel", "Capes", "Wool"),
             "x4": ("Apparel", "Mantles", "Wool")}
    rows = [(pid, tag, "category", f"l{i}", i, path[i - 2] if i > 1 else None)
            for pid, path in paths.items() for i, tag in enumerate(path, start=1)]
    labels = pl.DataFrame(rows, orient="row", schema=hierarchy_labels().schema)
    space = build_label_space(labels, list(paths), min_support=2)
    assert space.head(L3).kind == SOFTMAX and tags_of(space, L3) == ["Silk", "Wool"]
    (taxonomy,) = space.taxonomies
    assert taxonomy.heads == (L1, L2)
    assert taxonomy.paths == ((0, 0), (0, 2), (1, 1))


def test_encoding_and_weights_accept_the_hierarchy_columns(space):
    y = encode_labels(hierarchy_labels(), ["b1", "a5"], space)
    assert y[L2][0].tolist() == [1.0, 0.0, 0.0] and y[L3][0].sum() == 0
    assert y[L3][1].sum() == 0  # Kurtas is rare
    w = sample_weights(y, space)
    assert w[L3].tolist() == [0.0, 0.0] and w[L2][0] > 0


def test_json_round_trip_and_old_files_without_taxonomies(space):
    assert LabelSpace.from_json(space.to_json()) == space
    old = json.loads(space.to_json())
    del old["taxonomies"]
    assert LabelSpace.from_json(json.dumps(old)) == dataclasses.replace(space, taxonomies=())


def test_bad_taxonomies_are_rejected():
    with pytest.raises(ValueError, match="at least 2 heads"):
        Taxonomy(tag_type="category", heads=(L1,), paths=((0,),))
    with pytest.raises(ValueError, match=r"has path \[0, -1, 1\]"):
        Taxonomy(tag_type="category", heads=(L1, L2, L3), paths=((0, -1, 1),))
    with pytest.raises(ValueError, match=r"has path \[0, 1\]"):
        Taxonomy(tag_type="category", heads=(L1, L2, L3), paths=((0, 1),))
    with pytest.raises(ValueError, match="has no paths"):
        Taxonomy(tag_type="category", heads=(L1, L2), paths=())


def test_bad_level_column_is_rejected():
    labels = hierarchy_labels().with_columns(level=pl.lit("top"))
    with pytest.raises(ValueError, match="'level' must hold integers"):
        build_label_space(labels, list(CATALOG), min_support=2)


def floors(space: LabelSpace, floor: float = 0.0) -> dict[str, np.ndarray]:
    return {h.name: np.full(h.size, floor) for h in space.heads}


def scores_for(space: LabelSpace, rows: dict[str, list[list[float]]]) -> dict[str, np.ndarray]:
    n = len(next(iter(rows.values())))
    out = {h.name: np.full((n, h.size), 1.0 / h.size) for h in space.heads}
    out.update({k: np.array(v) for k, v in rows.items()})
    return out


def test_inconsistent_arg_max_is_decoded_to_a_valid_path(space):
    # l1 Apparel 0.6; l2 Tops 0.5, Shoes 0.4; l3 Sneakers (under Shoes) 0.7
    scores = scores_for(space, {L1: [[0.6, 0.4]], L2: [[0.1, 0.4, 0.5]],
                                L3: [[0.2, 0.7, 0.1]]})
    flat = apply_thresholds(scores, floors(space), space, hierarchical=False)
    assert [flat[h].argmax() for h in (L1, L2, L3)] == [0, 2, 1]
    assert path_validity(flat, space) == 0.0
    joint = apply_thresholds(scores, floors(space), space)
    # Apparel > Bottoms 0.6 * 0.1 / 0.6 = 0.1; > Tops > Shirts 0.6 * 5/6 * 2/3 = 0.33;
    # > Tops > Tshirts 0.17; Footwear > Shoes > Sneakers 0.4 * 1 * 1 = 0.4 wins
    assert [joint[h].tolist() for h in (L1, L2, L3)] == [[[0, 1]], [[0, 1, 0]], [[0, 1, 0]]]
    assert path_validity(joint, space) == 1.0
    # the plain facet of the same tag type is decided on its own
    assert joint["category:usage"].tolist() == flat["category:usage"].tolist()


def test_a_product_under_a_leaf_gets_no_deeper_tag(space):
    scores = scores_for(space, {L1: [[0.9, 0.1]], L2: [[0.8, 0.1, 0.1]],
                                L3: [[0.6, 0.3, 0.1]]})
    joint = apply_thresholds(scores, floors(space), space)
    assert joint[L1].tolist() == [[1, 0]] and joint[L2].tolist() == [[1, 0, 0]]
    assert joint[L3].tolist() == [[0, 0, 0]]
    tags = scores_to_tags(scores, floors(space), space)
    # the reported scores are the heads' own scores, not the path's probability
    assert [t for t in tags[0] if t[1].startswith("l")] == [
        ("category", "l1", "Apparel", 0.9), ("category", "l2", "Bottoms", 0.8)]
    flat = scores_to_tags(scores, floors(space), space, hierarchical=False)
    assert ("category", "l3", "Shirts", 0.6) in flat[0]


def brute_force_path(space: LabelSpace, scores: dict[str, np.ndarray], row: int) -> tuple:
    """The most probable path by walking the tree in Python (the reference for the numpy)."""
    taxonomy = space.taxonomies[0]
    best, best_p = None, -1.0
    for path in taxonomy.paths:
        p = 1.0
        for level, cls in enumerate(path):
            if cls < 0:
                break
            siblings = {q[level] for q in taxonomy.paths if q[:level] == path[:level]}
            s = scores[taxonomy.heads[level]][row]
            p *= s[cls] / sum(s[c] for c in siblings)
        if p > best_p:
            best, best_p = path, p
    return best


def test_random_scores_always_decode_to_valid_paths(space):
    rng = np.random.default_rng(7)
    n = 300
    scores = {h.name: rng.dirichlet(np.full(h.size, 0.5), size=n) for h in space.heads}
    joint = apply_thresholds(scores, floors(space), space)
    assert path_validity(joint, space) == 1.0
    flat = apply_thresholds(scores, floors(space), space, hierarchical=False)
    assert path_validity(flat, space) < 0.7
    taxonomy = space.taxonomies[0]
    for row in range(n):
        decided = tuple(int(joint[h][row].argmax()) if joint[h][row].any() else -1
                        for h in taxonomy.heads)
        assert decided == brute_force_path(space, scores, row), row


def test_not_hierarchical_is_the_independent_arg_max(space):
    rng = np.random.default_rng(3)
    scores = {h.name: rng.dirichlet(np.ones(h.size), size=50) for h in space.heads}
    thr = floors(space, 0.4)
    flat = apply_thresholds(scores, thr, space, hierarchical=False)
    plain = apply_thresholds(scores, thr, dataclasses.replace(space, taxonomies=()))
    for h in space.heads:
        assert flat[h.name].tolist() == plain[h.name].tolist()
        top = scores[h.name].argmax(axis=1)
        kept = scores[h.name][np.arange(50), top] >= 0.4
        assert flat[h.name].sum(axis=1).tolist() == kept.astype(int).tolist()
    rows, _, _ = given_tags(scores, thr, space, hierarchical=False)
    assert len(rows) == sum(int(flat[h.name].sum()) for h in space.heads)


def test_softmax_floor_cuts_the_path_at_the_first_level_under_it(space):
    scores = scores_for(space, {L1: [[0.9, 0.1], [0.3, 0.7], [0.9, 0.1]],
                                L2: [[0.1, 0.1, 0.8], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]],
                                L3: [[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.9, 0.05, 0.05]]})
    joint = apply_thresholds(scores, floors(space, 0.5), space)
    # row 0: Apparel > Tops > Shirts all over the floor
    assert [joint[h][0].tolist() for h in (L1, L2, L3)] == [[1, 0], [0, 0, 1], [1, 0, 0]]
    # row 1: Footwear 0.7 > Shoes 0.8 > Sneakers 0.8
    assert [joint[h][1].tolist() for h in (L1, L2, L3)] == [[0, 1], [0, 1, 0], [0, 1, 0]]
    # row 2: Tops (0.4) is under the floor: no level 2 and no level 3, though Shirts is 0.9
    assert [joint[h][2].tolist() for h in (L1, L2, L3)] == [[1, 0], [0, 0, 0], [0, 0, 0]]
    assert path_validity(joint, space) == 1.0
    # a chosen top level under the floor gives no category level at all
    low = dict(scores, **{L1: np.array([[0.45, 0.55]] * 3)})
    low_dec = apply_thresholds(low, floors(space, 0.6), space)
    assert all(low_dec[h].sum() == 0 for h in (L1, L2, L3))
    assert np.isnan(path_validity(low_dec, space))


def one_hot(size: int, cls: list[int]) -> list[int]:
    return [int(c in cls) for c in range(size)]


def test_path_validity_counts_prefixes_and_skips_untagged_products(space):
    rows = [  # (l1, l2, l3) class lists per product
        ([0], [2], [0]),      # Apparel > Tops > Shirts: valid
        ([0], [], []),        # Apparel: a valid prefix
        ([], [2], []),        # Tops without a level 1: invalid
        ([1], [2], []),       # Footwear > Tops: invalid
        ([0], [0, 2], []),    # two level-2 tags: invalid
        ([], [], []),         # no category: not counted
    ]
    sizes = {L1: 2, L2: 3, L3: 3}
    decisions = {h.name: np.zeros((len(rows), h.size), np.uint8) for h in space.heads}
    for head, level in zip((L1, L2, L3), range(3), strict=True):
        decisions[head] = np.array([one_hot(sizes[head], r[level]) for r in rows], np.uint8)
    assert path_validity(decisions, space) == pytest.approx(2 / 5)
    assert np.isnan(path_validity(decisions, dataclasses.replace(space, taxonomies=())))


def test_taxonomy_over_a_missing_head_is_an_error(space):
    broken = dataclasses.replace(space, heads=tuple(h for h in space.heads if h.name != L3))
    scores = {h.name: np.full((1, h.size), 1.0 / h.size) for h in broken.heads}
    with pytest.raises(ValueError, match="names 'category:l3', which is not a softmax head"):
        apply_thresholds(scores, floors(broken), broken)


def test_decoding_scales_to_a_catalog_sized_taxonomy():
    # 8 x 5 x 5 = 200 paths, 4,000 products: the shapes of a myntra call
    heads = [("t1", 8), ("t2", 40), ("t3", 200)]
    paths = [(a, a * 5 + b, (a * 5 + b) * 5 + c)
             for a, b, c in itertools.product(range(8), range(5), range(5))]
    rows = []
    for i, (a, b, c) in enumerate(paths):
        for k in range(3):
            pid = f"p{i}-{k}"
            rows += [(pid, f"A{a}", "category", "t1", 1, None),
                     (pid, f"B{b:02d}", "category", "t2", 2, f"A{a}"),
                     (pid, f"C{c:03d}", "category", "t3", 3, f"B{b:02d}")]
    labels = pl.DataFrame(rows, orient="row", schema=hierarchy_labels().schema)
    space = build_label_space(labels, labels["product_id"].unique(), min_support=1)
    assert [space.head(f"category:{h}").size for h, _ in heads] == [n for _, n in heads]
    assert len(space.taxonomies[0].paths) == 200
    rng = np.random.default_rng(0)
    scores = {h.name: rng.dirichlet(np.ones(h.size), size=4000) for h in space.heads}
    decisions = apply_thresholds(scores, floors(space), space)
    assert path_validity(decisions, space) == 1.0
