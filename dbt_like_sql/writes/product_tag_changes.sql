-- What a write changes, key by key (product_id, tag_type, tag), comparing the candidates with
-- the current tags they replace: 'added', 'removed', 'changed' (score moved by more than 1e-6,
-- or another source or model version) and 'updated' (only facet or explanation differ, which
-- updates the row but is no change event). Keys that stay as they are are left out.
-- Facet, explanation and versions are the new ones, the old ones for a removed key; score and
-- source are the new ones (NULL for a removed key) beside the old ones.
WITH compared AS (
    SELECT
        coalesce(n.product_id, o.product_id) AS product_id,
        coalesce(n.tag, o.tag) AS tag,
        coalesce(n.tag_type, o.tag_type) AS tag_type,
        CASE
            WHEN o.product_id IS NULL THEN 'added'
            WHEN n.product_id IS NULL THEN 'removed'
            WHEN abs(n.score - o.score) > 1e-6
                OR n.source IS DISTINCT FROM o.source
                OR n.tagger_version IS DISTINCT FROM o.tagger_version
                OR n.refiner_version IS DISTINCT FROM o.refiner_version THEN 'changed'
            WHEN n.facet IS DISTINCT FROM o.facet
                OR n.explanation IS DISTINCT FROM o.explanation THEN 'updated'
        END AS change,
        CASE WHEN n.product_id IS NULL THEN o.facet ELSE n.facet END AS facet,
        n.score,
        n.source,
        CASE WHEN n.product_id IS NULL THEN o.explanation ELSE n.explanation END AS explanation,
        CASE WHEN n.product_id IS NULL THEN o.tagger_version ELSE n.tagger_version END
            AS tagger_version,
        CASE WHEN n.product_id IS NULL THEN o.refiner_version ELSE n.refiner_version END
            AS refiner_version,
        o.score AS old_score,
        o.source AS old_source,
        o.run_id AS old_run_id,
        o.tagged_at AS old_tagged_at
    FROM {{ ref('candidates') }} AS n
    FULL OUTER JOIN {{ ref('current') }} AS o
        ON n.product_id = o.product_id AND n.tag_type = o.tag_type AND n.tag = o.tag
)
SELECT *
FROM compared
WHERE change IS NOT NULL
