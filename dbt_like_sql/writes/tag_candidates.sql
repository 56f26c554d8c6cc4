-- The new tag set of every cleaned product, as product_tags will hold it: the catalog's own
-- tags (source 'catalog', score 1), and the model's tags in the facets the catalog leaves
-- open for that product. A catalog value is a fact the model must not contradict (two
-- article types for one product); the model fills the gaps.
WITH catalog AS (
    SELECT
        l.product_id, l.tag, l.tag_type, l.facet,
        1.0::DOUBLE AS score,
        'catalog' AS source,
        NULL::VARCHAR AS explanation,
        NULL::VARCHAR AS tagger_version,
        NULL::VARCHAR AS refiner_version
    FROM {{ ref('product_labels') }} AS l
    SEMI JOIN {{ ref('cleaned_products') }} AS c USING (product_id)
    WHERE l.source = 'catalog' AND {{ var('include_catalog_tags') }} = 1
)
SELECT * FROM catalog
UNION ALL
SELECT
    m.product_id, m.tag, m.tag_type, m.facet, m.score, m.source, m.explanation,
    m.tagger_version, m.refiner_version
FROM {{ ref('model_tags') }} AS m
ANTI JOIN catalog AS c
    ON c.product_id = m.product_id AND c.tag_type = m.tag_type AND c.facet = m.facet
