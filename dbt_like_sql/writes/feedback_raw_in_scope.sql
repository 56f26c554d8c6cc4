-- The raw_feedback rows a scoped apply reads: those of the scope's products, and those with
-- no product_id at all (which cannot be applied, and are counted as such).
SELECT f.*
FROM {{ ref('raw_feedback') }} AS f
WHERE nullif(trim(f.product_id), '') IS NULL
    OR trim(f.product_id) IN (SELECT product_id FROM {{ ref('scope') }})
