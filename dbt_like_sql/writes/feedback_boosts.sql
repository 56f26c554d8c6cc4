-- The history rows of a run's last write that raised a score and kept the source: the
-- confidence boosts of accepted tags.
SELECT count(*) AS boosted
FROM {{ ref('product_tag_history') }}
WHERE change = 'changed'
    AND new_source = old_source
    AND new_score > old_score
    AND write_seq = (
        SELECT max(write_seq) FROM {{ ref('product_tag_writes') }}
        WHERE run_id = {{ var('run_id') }}
    )
