-- The rules a candidate tag set must meet before it is written: one row per broken rule, with
-- how many rows break it and the first offending row (by product_id, tag) as an example.
-- The row rules are checked in one scan; only the (normally no) offending rows are kept.
WITH offending AS MATERIALIZED (
    SELECT product_id, tag, tag_type, score, source
    FROM {{ ref('candidates') }}
    WHERE product_id IS NULL OR tag IS NULL OR tag_type IS NULL
        OR score IS NULL OR isnan(score) OR score < 0 OR score > 1
        OR source IS NULL OR NOT list_contains(string_split({{ var('sources') }}, ','), source)
),
bad AS (
    SELECT 'product_id' AS column_name, 'is null' AS problem, product_id, tag,
        NULL::VARCHAR AS value
    FROM offending
    WHERE product_id IS NULL
    UNION ALL
    SELECT 'tag', 'is null', product_id, tag, NULL
    FROM offending
    WHERE tag IS NULL
    UNION ALL
    SELECT 'tag_type', 'is null', product_id, tag, NULL
    FROM offending
    WHERE tag_type IS NULL
    UNION ALL
    SELECT 'score', 'is null, NaN or outside [0, 1]', product_id, tag, CAST(score AS VARCHAR)
    FROM offending
    WHERE score IS NULL OR isnan(score) OR score < 0 OR score > 1
    UNION ALL
    SELECT 'source', 'is not one of ' || {{ var('sources') }}, product_id, tag,
        coalesce(source, 'NULL')
    FROM offending
    WHERE source IS NULL OR NOT list_contains(string_split({{ var('sources') }}, ','), source)
    UNION ALL
    SELECT 'product_id, tag_type, tag', 'is not unique', product_id, tag,
        CAST(count(*) AS VARCHAR) || ' rows with tag_type ' || tag_type
    FROM {{ ref('candidates') }}
    WHERE product_id IS NOT NULL AND tag_type IS NOT NULL AND tag IS NOT NULL
    GROUP BY product_id, tag_type, tag
    HAVING count(*) > 1
)
SELECT
    column_name,
    problem,
    count(*) AS bad_rows,
    first(product_id ORDER BY product_id NULLS FIRST, tag NULLS FIRST) AS product_id,
    first(tag ORDER BY product_id NULLS FIRST, tag NULLS FIRST) AS tag,
    first(value ORDER BY product_id NULLS FIRST, tag NULLS FIRST) AS value
FROM bad
GROUP BY column_name, problem
ORDER BY column_name, problem
