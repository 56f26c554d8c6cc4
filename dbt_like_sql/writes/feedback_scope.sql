-- The products a feedback apply rebuilds: every product named by the raw_feedback rows of the
-- given loads, or of all loads when all_loads is 1.
SELECT DISTINCT nullif(trim(f.product_id), '') AS product_id
FROM {{ ref('raw_feedback') }} AS f
WHERE nullif(trim(f.product_id), '') IS NOT NULL
    AND ({{ var('all_loads') }} = 1 OR f.load_id IN (SELECT load_id FROM {{ ref('loads') }}))
