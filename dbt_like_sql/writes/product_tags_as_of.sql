-- product_tags as it was right after one write, rebuilt from product_tag_history alone: the
-- latest event of each key up to that write, unless that event removed it. Facet and
-- explanation are those of that event (later facet or explanation-only updates are no events).
SELECT
    product_id, tag, tag_type, facet, new_score AS score, new_source AS source,
    tagger_version, refiner_version, explanation
FROM (
    SELECT *
    FROM {{ ref('product_tag_history') }}
    WHERE write_seq <= {{ var('write_seq') }}
    QUALIFY row_number() OVER (
        PARTITION BY product_id, tag_type, tag ORDER BY write_seq DESC
    ) = 1
) AS latest
WHERE change <> 'removed'
ORDER BY product_id, tag_type, tag
