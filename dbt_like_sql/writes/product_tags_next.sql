-- product_tags after a write. Products outside a scoped write's scope keep their rows as they
-- are. For the products in it, each candidate becomes a row: a key whose value did not change
-- (no change event) keeps its current score, run_id and tagged_at, so rewriting the same
-- candidates gives the same table; it takes the candidate's facet and explanation.
WITH in_scope AS (
    SELECT
        n.*,
        o.product_id IS NOT NULL
            AND abs(n.score - o.score) <= 1e-6
            AND n.source IS NOT DISTINCT FROM o.source
            AND n.tagger_version IS NOT DISTINCT FROM o.tagger_version
            AND n.refiner_version IS NOT DISTINCT FROM o.refiner_version AS kept,
        o.score AS old_score,
        o.run_id AS old_run_id,
        o.tagged_at AS old_tagged_at
    FROM {{ ref('candidates') }} AS n
    LEFT JOIN {{ ref('current') }} AS o
        ON n.product_id = o.product_id AND n.tag_type = o.tag_type AND n.tag = o.tag
)
SELECT
    t.product_id, t.tag, t.tag_type, t.facet, t.score, t.source, t.explanation,
    t.tagger_version, t.refiner_version, t.run_id, t.tagged_at
FROM {{ ref('product_tags') }} AS t
ANTI JOIN {{ ref('scope') }} AS s USING (product_id)
WHERE {{ var('scoped') }} = 1
UNION ALL
SELECT
    product_id, tag, tag_type, facet,
    CASE WHEN kept THEN old_score ELSE score END AS score,
    source, explanation, tagger_version, refiner_version,
    CASE WHEN kept THEN old_run_id ELSE {{ var('run_id') }} END AS run_id,
    CASE WHEN kept THEN old_tagged_at ELSE CAST({{ var('at') }} AS TIMESTAMP) END AS tagged_at
FROM in_scope
