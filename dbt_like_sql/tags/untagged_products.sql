-- Cleaned products that have no current tag, each with the reason why: so every cleaned
-- product is either tagged in product_tags or listed here.
SELECT
    c.product_id,
    CASE
        WHEN nullif(trim(coalesce(c.title, '')), '') IS NULL AND c.image_path IS NULL
            THEN 'no_text_or_image'
        ELSE 'no_tag_above_threshold'
    END AS reason
FROM {{ ref('cleaned_products') }} AS c
ANTI JOIN {{ ref('product_tags') }} AS t USING (product_id)
