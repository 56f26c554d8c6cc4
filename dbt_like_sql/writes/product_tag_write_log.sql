-- The product_tag_writes row of one write: which run wrote, when, over which scope (NULL: all
-- products) and what it did. Every write is logged, also one that changed nothing.
SELECT
    CAST({{ var('write_seq') }} AS BIGINT) AS write_seq,
    {{ var('run_id') }} AS run_id,
    CAST({{ var('at') }} AS TIMESTAMP) AS written_at,
    nullif({{ var('scope') }}, '') AS scope,
    CAST({{ var('candidates') }} AS BIGINT) AS candidates,
    CAST({{ var('added') }} AS BIGINT) AS added,
    CAST({{ var('removed') }} AS BIGINT) AS removed,
    CAST({{ var('changed') }} AS BIGINT) AS changed,
    CAST({{ var('unchanged') }} AS BIGINT) AS unchanged,
    CAST({{ var('rows') }} AS BIGINT) AS rows,
    CAST({{ var('products') }} AS BIGINT) AS products
