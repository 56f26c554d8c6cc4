-- Every raw_feedback row with its tag_type resolved, its facet, and the reason it cannot be
-- applied (NULL when it can). A missing tag_type is taken from tag_taxonomy when the tag name
-- has one tag type there, else from the tags the product already has (model, catalog, sales,
-- current tags, or the same tag in its other feedback) when they give it one tag type. The
-- facet is the taxonomy's for (tag_type, tag), else 'feedback'. A row with a reason is not
-- applied and is listed by feedback_rejects; nothing is dropped silently.
WITH raw AS (
    SELECT
        load_id, source_file, source_line, loaded_at, created_at, note,
        nullif(trim(product_id), '') AS product_id,
        nullif(trim(tag), '') AS tag,
        nullif(trim(tag_type), '') AS given_type,
        lower(trim(action)) AS action
    FROM {{ ref('raw_feedback') }}
),
taxonomy AS (
    SELECT tag, tag_type, min(facet) AS facet
    FROM {{ ref('tag_taxonomy') }}
    GROUP BY tag, tag_type
),
taxonomy_types AS (
    SELECT tag, count(*) AS types, min(tag_type) AS tag_type,
        string_agg(tag_type, ', ' ORDER BY tag_type) AS type_list
    FROM taxonomy
    GROUP BY tag
),
untyped AS (
    SELECT DISTINCT product_id, tag
    FROM raw
    WHERE given_type IS NULL AND product_id IS NOT NULL AND tag IS NOT NULL
),
on_product AS (
    SELECT product_id, tag, tag_type FROM {{ ref('model_tags') }}
    SEMI JOIN untyped USING (product_id, tag)
    UNION
    SELECT product_id, tag, tag_type FROM {{ ref('product_labels') }}
    SEMI JOIN untyped USING (product_id, tag)
    UNION
    SELECT product_id, tag, tag_type FROM {{ ref('behaviour_tags') }}
    SEMI JOIN untyped USING (product_id, tag)
    UNION
    SELECT product_id, tag, tag_type FROM {{ ref('product_tags') }}
    SEMI JOIN untyped USING (product_id, tag)
    UNION
    SELECT product_id, tag, given_type FROM raw
    SEMI JOIN untyped USING (product_id, tag)
    WHERE given_type IS NOT NULL
),
product_types AS (
    SELECT product_id, tag, count(*) AS types, min(tag_type) AS tag_type,
        string_agg(tag_type, ', ' ORDER BY tag_type) AS type_list
    FROM on_product
    GROUP BY product_id, tag
),
resolved AS (
    SELECT
        r.*,
        coalesce(
            r.given_type,
            CASE WHEN t.types = 1 THEN t.tag_type END,
            CASE WHEN p.types = 1 THEN p.tag_type END
        ) AS tag_type,
        CASE
            WHEN r.given_type IS NOT NULL THEN 'given'
            WHEN t.types = 1 THEN 'tag_taxonomy'
            WHEN p.types = 1 THEN 'product'
        END AS tag_type_from,
        CASE WHEN t.types IS NULL THEN 'is not in tag_taxonomy'
            ELSE 'has tag types ' || t.type_list || ' in tag_taxonomy' END
        || CASE WHEN p.types IS NULL THEN ' and is not on the product'
            ELSE ' and has tag types ' || p.type_list || ' on the product' END AS type_trouble
    FROM raw AS r
    LEFT JOIN taxonomy_types AS t ON r.given_type IS NULL AND t.tag = r.tag
    LEFT JOIN product_types AS p
        ON r.given_type IS NULL AND p.product_id = r.product_id AND p.tag = r.tag
)
SELECT
    r.load_id, r.source_file, r.source_line, r.loaded_at, r.created_at, r.note,
    r.product_id, r.tag, r.tag_type, r.given_type, r.tag_type_from, r.action,
    coalesce(x.facet, 'feedback') AS facet,
    CASE
        WHEN r.action IS NULL OR r.action NOT IN ('accept', 'reject', 'add', 'withdraw')
            THEN 'action ' || coalesce('''' || r.action || '''', 'NULL')
                || ' is not one of accept, reject, add, withdraw'
        WHEN r.product_id IS NULL THEN 'product_id is missing'
        WHEN r.tag IS NULL THEN 'tag is missing'
        WHEN r.tag_type IS NULL
            THEN 'tag_type is missing and cannot be resolved: tag ''' || r.tag || ''' '
                || r.type_trouble
        WHEN r.product_id NOT IN (
            SELECT product_id FROM {{ ref('cleaned_products') }}
        ) THEN 'product_id ''' || r.product_id || ''' is not in cleaned_products'
    END AS reason
FROM resolved AS r
LEFT JOIN taxonomy AS x ON x.tag = r.tag AND x.tag_type = r.tag_type
