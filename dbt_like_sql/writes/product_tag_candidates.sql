-- The candidate tag set a write compares with product_tags, in the column order and types of
-- product_tags (strings as VARCHAR, score as DOUBLE).
SELECT
    CAST(product_id AS VARCHAR) AS product_id,
    CAST(tag AS VARCHAR) AS tag,
    CAST(tag_type AS VARCHAR) AS tag_type,
    CAST(facet AS VARCHAR) AS facet,
    CAST(score AS DOUBLE) AS score,
    CAST(source AS VARCHAR) AS source,
    CAST(explanation AS VARCHAR) AS explanation,
    CAST(tagger_version AS VARCHAR) AS tagger_version,
    CAST(refiner_version AS VARCHAR) AS refiner_version
FROM {{ ref('candidates') }}
