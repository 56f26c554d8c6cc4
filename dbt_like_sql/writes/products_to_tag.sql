-- The cleaned products whose model tags must be computed in this pass: all of them on a full
-- retag; otherwise those never tagged, those whose title, description or image changed, and
-- those tagged by another tagger or refiner version (so a new champion retags everything).
-- The feature columns' raw values ride in tag_fields (feature:<name>), so they are hashed too.
-- The image counts by its content hash, not its path: a moved project home (its image paths
-- rewritten by `tag-pipeline relocate`) or a renamed file with the same bytes rescores nothing.
WITH products AS (
    SELECT
        product_id, title, coalesce(description, '') AS description, image_path, tag_fields,
        md5(concat_ws(chr(31), title, coalesce(description, ''), coalesce(image_hash, ''),
                      CAST(map_entries(tag_fields) AS VARCHAR)))
            AS input_hash
    FROM {{ ref('cleaned_products') }}
)
SELECT p.product_id, p.title, p.description, p.image_path, p.tag_fields, p.input_hash
FROM products AS p
LEFT JOIN {{ ref('model_tag_products') }} AS m USING (product_id)
WHERE {{ var('full_retag') }} = 1
   OR m.product_id IS NULL
   OR m.input_hash <> p.input_hash
   OR m.tagger_version <> {{ var('tagger_version') }}
   OR coalesce(m.refiner_version, '') <> {{ var('refiner_version') }}
