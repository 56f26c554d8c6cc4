-- The current tags of the products a scoped write replaces.
SELECT t.*
FROM {{ ref('product_tags') }} AS t
SEMI JOIN {{ ref('scope') }} AS s USING (product_id)
