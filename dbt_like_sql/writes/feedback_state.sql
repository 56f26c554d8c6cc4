-- The feedback in force per (product_id, tag_type, tag): the latest applicable event by
-- (created_at, loaded_at, source_line), with load_id and source_file breaking exact ties. A
-- 'withdraw' as latest event cancels every earlier one, so the key has no state and is left
-- out. action is 'accept', 'reject' or 'add'; facet is the event's (taxonomy or 'feedback').
SELECT product_id, tag_type, tag, facet, action, created_at, loaded_at, load_id, source_file,
    source_line
FROM (
    SELECT *
    FROM {{ ref('feedback_events') }}
    WHERE reason IS NULL
    QUALIFY row_number() OVER (
        PARTITION BY product_id, tag_type, tag
        ORDER BY created_at DESC NULLS LAST, loaded_at DESC NULLS LAST,
            source_line DESC NULLS LAST, load_id DESC NULLS LAST, source_file DESC NULLS LAST
    ) = 1
) AS latest
WHERE action <> 'withdraw'
