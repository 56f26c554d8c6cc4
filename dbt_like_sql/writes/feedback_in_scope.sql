-- The rows of one per-product table (product_id column) whose product is in a scope: what a
-- scoped candidate set reads instead of the whole table.
SELECT t.*
FROM {{ ref('table') }} AS t
SEMI JOIN {{ ref('scope') }} AS s USING (product_id)
