-- The keys (product_id, tag_type, tag) a write that changes little deletes from product_tags:
-- removed, changed and updated (facet or explanation only) keys. A scoped write compares only
-- the scope's products, so no key of another product is ever listed.
SELECT product_id, tag_type, tag
FROM {{ ref('changes') }}
WHERE change IN ('removed', 'changed', 'updated')
