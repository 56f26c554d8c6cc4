-- One day of sales per product, for the daily partitions of sales_daily: the order lines whose
-- counted copy was ordered in [day_start, day_end). Each order line counts once, as in
-- sales_by_product_period: an (order_id, product_id) loaded more than once counts as its copy
-- from the latest load (loaded_at, then source_file, then source_line), wherever that copy's
-- day falls; lines without an order_id are never collapsed. buyers counts distinct
-- pseudonymised user keys (lines without a user are not buyers).
WITH touched AS (
    SELECT DISTINCT order_id, product_id
    FROM {{ ref('raw_sales') }}
    WHERE order_id IS NOT NULL
        AND ordered_at >= {{ var('day_start') }}::TIMESTAMP
        AND ordered_at < {{ var('day_end') }}::TIMESTAMP
),
counted AS (
    SELECT s.product_id, s.quantity, s.price, s.ordered_at, s.user_key
    FROM {{ ref('raw_sales') }} AS s
    SEMI JOIN touched AS t ON t.order_id = s.order_id AND t.product_id = s.product_id
    QUALIFY row_number() OVER (
        PARTITION BY s.order_id, s.product_id
        ORDER BY s.loaded_at DESC, s.source_file DESC, s.source_line DESC) = 1
    UNION ALL
    SELECT product_id, quantity, price, ordered_at, user_key
    FROM {{ ref('raw_sales') }}
    WHERE order_id IS NULL
        AND ordered_at >= {{ var('day_start') }}::TIMESTAMP
        AND ordered_at < {{ var('day_end') }}::TIMESTAMP
)
SELECT {{ var('day_start') }}::DATE AS sales_date, product_id,
       sum(quantity)::BIGINT AS units,
       count(*)::BIGINT AS order_lines,
       sum(quantity * price) AS revenue,
       count(DISTINCT user_key)::BIGINT AS buyers
FROM counted
WHERE ordered_at >= {{ var('day_start') }}::TIMESTAMP
    AND ordered_at < {{ var('day_end') }}::TIMESTAMP
GROUP BY product_id
