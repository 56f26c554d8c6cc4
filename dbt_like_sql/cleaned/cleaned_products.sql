-- The latest valid version of every product, with its image checked (an unusable image is a
-- flag in image_status, not a rejection). Where the profile derives image paths from a
-- template, a product whose file does not exist simply has no image ('none').
SELECT
    s.product_id,
    s.title,
    s.description,
    s.text_lang,
    s.image_ref,
    i.image_path,
    CASE WHEN s.image_ref IS NULL THEN 'none'
         WHEN coalesce(i.status, 'missing') = 'missing' AND {{ var('image_from_template') }} = 1
             THEN 'none'
         ELSE coalesce(i.status, 'missing') END AS image_status,
    i.width AS image_width,
    i.height AS image_height,
    i.content_hash AS image_hash,
    s.price,
    s.currency,
    s.updated_at,
    s.tag_fields,
    s.source_file,
    s.source_line,
    s.load_id
FROM {{ ref('stg_products') }} AS s
LEFT JOIN {{ ref('image_checks') }} AS i ON i.image_ref = s.image_ref
WHERE s.row_status = 'cleaned'
ORDER BY s.product_id
