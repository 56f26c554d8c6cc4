-- Candidate tags of products outside a scoped write's scope: a scoped write replaces the tags
-- of the scope's products only, so such a tag would be silently lost.
SELECT
    'product_id' AS column_name,
    'is not in the scope' AS problem,
    count(*) AS bad_rows,
    min(product_id) AS product_id,
    arg_min(tag, product_id) AS tag,
    NULL::VARCHAR AS value
FROM {{ ref('candidates') }} AS c
ANTI JOIN {{ ref('scope') }} AS s USING (product_id)
HAVING count(*) > 0
