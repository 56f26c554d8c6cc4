-- Every input row accounted for, per loaded file: the rows the loader counted must equal
-- cleaned + rejected (at parse or clean) + superseded; and how many update times were not
-- understood.
WITH fate AS (
    SELECT
        load_id,
        count(*) FILTER (WHERE row_status = 'cleaned') AS cleaned,
        count(*) FILTER (WHERE row_status = 'rejected') AS rejected,
        count(*) FILTER (WHERE row_status = 'superseded') AS superseded,
        count(*) FILTER (WHERE updated_at_unparsed) AS updated_at_unparsed
    FROM {{ ref('stg_products') }}
    GROUP BY load_id
),
parse AS (
    SELECT load_id, count(*) AS parse_rejected
    FROM {{ ref('raw_product_rejects') }}
    GROUP BY load_id
)
SELECT
    f.source_file,
    f.load_id,
    f.loaded_at,
    f.rows_loaded + f.rows_rejected AS raw_rows,
    coalesce(p.parse_rejected, 0) AS parse_rejected,
    coalesce(x.cleaned, 0) AS cleaned,
    coalesce(x.rejected, 0) AS rejected,
    coalesce(x.superseded, 0) AS superseded,
    coalesce(p.parse_rejected, 0) + coalesce(x.cleaned, 0) + coalesce(x.rejected, 0)
        + coalesce(x.superseded, 0) AS accounted,
    -- rows whose update time is not in an accepted form (kept, with no update time)
    coalesce(x.updated_at_unparsed, 0) AS updated_at_unparsed
FROM {{ ref('ingest_files') }} AS f
LEFT JOIN fate AS x USING (load_id)
LEFT JOIN parse AS p USING (load_id)
ORDER BY f.loaded_at, f.source_file
