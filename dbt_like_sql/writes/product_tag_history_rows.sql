-- The product_tag_history rows of one write: one per added, removed or changed key. Versions,
-- facet and explanation are those of the new value (of the old one for 'removed').
SELECT
    product_id,
    tag,
    tag_type,
    facet,
    change,
    old_score,
    score AS new_score,
    old_source,
    source AS new_source,
    tagger_version,
    refiner_version,
    explanation,
    {{ var('run_id') }} AS run_id,
    CAST({{ var('at') }} AS TIMESTAMP) AS changed_at,
    CAST({{ var('write_seq') }} AS BIGINT) AS write_seq
FROM {{ ref('changes') }}
WHERE change IN ('added', 'removed', 'changed')
