-- The new tag set of every cleaned product, as product_tags will hold it, with the feedback in
-- force (feedback_state) applied, so a full retag and a scoped feedback apply give the same
-- rows for a product:
-- * the catalog's own tags (source 'catalog', score 1). A catalog value is a fact the model
--   must not contradict (two article types for one product);
-- * the model's tags in the facets the catalog leaves open for that product (the model fills
--   the gaps), and sales behaviour tags (source 'sales', evidence as explanation) on keys and
--   in facets neither of them fills;
-- * a rejected key is removed whatever its source, and a rejected catalog tag no longer
--   closes its facet to the model; it stays removed on every retag until withdrawn;
-- * an added key is pinned (source 'feedback', score 1) in place of a model, refiner or sales
--   row of the same key (a catalog row of that key already says so at score 1 and is kept);
-- * an accepted key keeps its source with its score raised to at least accept_floor.
-- Scores are read from model_tags and behaviour_tags, never from product_tags, so applying
-- the same feedback again gives the same rows (an accept does not raise a score twice).
WITH feedback AS (
    SELECT product_id, tag_type, tag, facet, action
    FROM {{ ref('feedback_state') }}
),
rejected AS (
    SELECT product_id, tag_type, tag FROM feedback WHERE action = 'reject'
),
accepted AS (
    SELECT product_id, tag_type, tag FROM feedback WHERE action = 'accept'
),
catalog AS (
    SELECT
        l.product_id, l.tag, l.tag_type, l.facet,
        1.0::DOUBLE AS score,
        'catalog' AS source,
        NULL::VARCHAR AS explanation,
        NULL::VARCHAR AS tagger_version,
        NULL::VARCHAR AS refiner_version
    FROM {{ ref('product_labels') }} AS l
    SEMI JOIN {{ ref('cleaned_products') }} AS c USING (product_id)
    ANTI JOIN rejected AS r
        ON r.product_id = l.product_id AND r.tag_type = l.tag_type AND r.tag = l.tag
    WHERE l.source = 'catalog' AND {{ var('include_catalog_tags') }} = 1
    -- one tag may sit in two facets (a path level and an article type): keep one row
    QUALIFY row_number() OVER (PARTITION BY l.product_id, l.tag_type, l.tag
                               ORDER BY l.facet) = 1
),
model AS (
    SELECT
        m.product_id, m.tag, m.tag_type, m.facet,
        CASE WHEN a.product_id IS NULL THEN m.score
            ELSE greatest(m.score, CAST({{ var('accept_floor') }} AS DOUBLE)) END AS score,
        m.source, m.explanation, m.tagger_version, m.refiner_version
    FROM {{ ref('model_tags') }} AS m
    LEFT JOIN accepted AS a
        ON a.product_id = m.product_id AND a.tag_type = m.tag_type AND a.tag = m.tag
    ANTI JOIN catalog AS c
        ON c.product_id = m.product_id AND c.tag_type = m.tag_type AND c.facet = m.facet
    ANTI JOIN catalog AS k
        ON k.product_id = m.product_id AND k.tag_type = m.tag_type AND k.tag = m.tag
    ANTI JOIN rejected AS r
        ON r.product_id = m.product_id AND r.tag_type = m.tag_type AND r.tag = m.tag
    -- two heads of one tag type may both give a tag (in different facets): keep the best
    QUALIFY row_number() OVER (PARTITION BY m.product_id, m.tag_type, m.tag
                               ORDER BY m.score DESC, m.facet) = 1
),
sales AS (
    SELECT
        b.product_id, b.tag, b.tag_type, b.facet,
        CASE WHEN a.product_id IS NULL THEN CAST(b.score AS DOUBLE)
            ELSE greatest(CAST(b.score AS DOUBLE), CAST({{ var('accept_floor') }} AS DOUBLE))
        END AS score,
        'sales' AS source,
        CAST(b.evidence AS VARCHAR) AS explanation,
        NULL::VARCHAR AS tagger_version,
        NULL::VARCHAR AS refiner_version
    FROM {{ ref('behaviour_tags') }} AS b
    LEFT JOIN accepted AS a
        ON a.product_id = b.product_id AND a.tag_type = b.tag_type AND a.tag = b.tag
    SEMI JOIN {{ ref('cleaned_products') }} AS p ON p.product_id = b.product_id
    ANTI JOIN catalog AS c
        ON c.product_id = b.product_id AND c.tag_type = b.tag_type AND c.facet = b.facet
    ANTI JOIN catalog AS k
        ON k.product_id = b.product_id AND k.tag_type = b.tag_type AND k.tag = b.tag
    ANTI JOIN model AS m
        ON m.product_id = b.product_id AND m.tag_type = b.tag_type AND m.tag = b.tag
    ANTI JOIN rejected AS r
        ON r.product_id = b.product_id AND r.tag_type = b.tag_type AND r.tag = b.tag
),
added AS (
    SELECT
        f.product_id, f.tag, f.tag_type, f.facet,
        1.0::DOUBLE AS score,
        'feedback' AS source,
        'added by feedback' AS explanation,
        NULL::VARCHAR AS tagger_version,
        NULL::VARCHAR AS refiner_version
    FROM feedback AS f
    ANTI JOIN catalog AS c
        ON c.product_id = f.product_id AND c.tag_type = f.tag_type AND c.tag = f.tag
    WHERE f.action = 'add'
),
proposed AS (
    SELECT * FROM catalog
    UNION ALL
    SELECT * FROM model
    UNION ALL
    SELECT * FROM sales
)
SELECT
    p.product_id, p.tag, p.tag_type, p.facet,
    p.score, p.source, p.explanation, p.tagger_version, p.refiner_version
FROM proposed AS p
ANTI JOIN added AS d
    ON d.product_id = p.product_id AND d.tag_type = p.tag_type AND d.tag = p.tag
UNION ALL
SELECT * FROM added
