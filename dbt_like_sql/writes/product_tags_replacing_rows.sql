-- The rows a write that changes little inserts into product_tags once the replaced keys are
-- deleted: an added or changed key takes the new value under the writing run; an updated key
-- (facet or explanation only) keeps its score, run_id and tagged_at, as in product_tags_next.
SELECT
    product_id, tag, tag_type, facet,
    CASE WHEN change = 'updated' THEN old_score ELSE score END AS score,
    source, explanation, tagger_version, refiner_version,
    CASE WHEN change = 'updated' THEN old_run_id ELSE {{ var('run_id') }} END AS run_id,
    CASE WHEN change = 'updated' THEN old_tagged_at ELSE CAST({{ var('at') }} AS TIMESTAMP) END
        AS tagged_at
FROM {{ ref('changes') }}
WHERE change IN ('added', 'changed', 'updated')
