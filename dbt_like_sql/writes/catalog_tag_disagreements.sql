-- The catalog values the champion model contradicts: one row per (product, single-valued facet)
-- where product_tags serves the catalog's own value (source 'catalog') and the model's tag in
-- that facet (model_tags, from the tagger or the refiner) is another value given with a score of
-- at least min_model_score. A review queue of suspected catalog errors, the most confident
-- first.
-- * Only single-valued facets (the label space's softmax heads: one colour, one article type):
--   in a multi-valued facet another tag is no contradiction.
-- * A row leaves the queue once it is reviewed: any feedback in force on either value (the
--   catalog value accepted or rejected, the model value rejected or added). A rejected catalog
--   value is no longer served (the facet opens to the model), so it leaves by the first rule.
WITH served AS (
    SELECT product_id, tag_type, facet, tag AS catalog_tag
    FROM {{ ref('product_tags') }}
    WHERE source = 'catalog'
),
model AS (
    SELECT
        m.product_id, m.tag_type, m.facet, m.tag AS model_tag, m.score AS model_score,
        m.source AS model_source, m.explanation, m.tagger_version, m.refiner_version
    FROM {{ ref('model_tags') }} AS m
    SEMI JOIN {{ ref('single_valued_facets') }} AS f
        ON f.tag_type = m.tag_type AND f.facet = m.facet
    WHERE m.score >= {{ var('min_model_score') }}
),
reviewed AS (
    SELECT product_id, tag_type, tag FROM {{ ref('feedback_state') }}
)
SELECT
    s.product_id, c.title, s.tag_type, s.facet, s.catalog_tag, m.model_tag, m.model_score,
    m.model_source, m.explanation, m.tagger_version, m.refiner_version
FROM served AS s
JOIN model AS m USING (product_id, tag_type, facet)
JOIN {{ ref('cleaned_products') }} AS c USING (product_id)
WHERE m.model_tag <> s.catalog_tag
    AND NOT EXISTS (
        SELECT 1 FROM reviewed AS r
        WHERE r.product_id = s.product_id AND r.tag_type = s.tag_type
            AND r.tag IN (s.catalog_tag, m.model_tag)
    )
ORDER BY m.model_score DESC, s.product_id, s.tag_type, s.facet
