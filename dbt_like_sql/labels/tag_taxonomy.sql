-- Every tag the catalog uses, with its type, facet, parent and how many products carry it.
SELECT
    tag,
    tag_type,
    facet,
    mode(parent) AS parent,
    min(level) AS level,
    count(DISTINCT product_id) AS product_count
FROM {{ ref('product_labels') }}
GROUP BY tag, tag_type, facet
ORDER BY tag_type, facet, product_count DESC, tag
