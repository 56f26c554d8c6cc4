-- Training label adjustments from the feedback in force: an added or accepted tag is a
-- positive (+1), a rejected one a negative (-1). Withdrawn feedback adjusts nothing.
SELECT product_id, tag, tag_type, facet,
    CAST(CASE WHEN action = 'reject' THEN -1 ELSE 1 END AS INTEGER) AS label
FROM {{ ref('feedback_state') }}
ORDER BY product_id, tag_type, tag
