-- One row per rejected input row with its reason: rows the file reader could not parse
-- (stage 'parse') and rows that failed a cleaning rule (stage 'clean').
SELECT
    source_file,
    source_line,
    load_id,
    product_id,
    reject_reason,
    'clean' AS stage,
    reject_detail AS detail,
    left(title, 200) AS title_head
FROM {{ ref('stg_products') }}
WHERE row_status = 'rejected'
UNION ALL
SELECT
    source_file,
    source_line,
    load_id,
    NULL AS product_id,
    error_type AS reject_reason,
    'parse' AS stage,
    error_message AS detail,
    left(raw_line, 200) AS title_head
FROM {{ ref('raw_product_rejects') }}
ORDER BY source_file, source_line
