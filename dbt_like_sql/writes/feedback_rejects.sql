-- The raw_feedback rows that cannot be applied, each with the reason (an unknown action, a
-- missing product_id or tag, a tag_type that cannot be resolved, any feedback for a product not
-- in cleaned_products: it is never applied). They stay in raw_feedback and are listed here until fixed.
SELECT load_id, source_file, source_line, loaded_at, created_at, product_id, tag,
    given_type AS tag_type, action, reason
FROM {{ ref('feedback_events') }}
WHERE reason IS NOT NULL
ORDER BY load_id, source_file, source_line
