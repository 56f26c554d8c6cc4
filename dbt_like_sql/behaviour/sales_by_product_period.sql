-- Units sold per product per calendar month and behaviour window before behaviour_as_of, each
-- order line counted once: an (order_id, product_id) loaded more than once (a corrected or
-- re-delivered line) counts as its copy from the latest load (loaded_at, then source_file,
-- then source_line); lines without an order_id are never collapsed. window_index 0 is the
-- behaviour_window_days days ending at behaviour_as_of, 1 the same length just before, NULL
-- older sales (kept for the monthly history).
WITH repeated AS (
    SELECT order_id, product_id
    FROM {{ ref('raw_sales') }}
    WHERE order_id IS NOT NULL
    GROUP BY order_id, product_id
    HAVING count(*) > 1
),
latest_of_repeated AS (
    SELECT s.product_id, s.quantity, s.price, s.ordered_at
    FROM {{ ref('raw_sales') }} AS s
    SEMI JOIN repeated AS r ON r.order_id = s.order_id AND r.product_id = s.product_id
    QUALIFY row_number() OVER (
        PARTITION BY s.order_id, s.product_id
        ORDER BY s.loaded_at DESC, s.source_file DESC, s.source_line DESC) = 1
),
order_lines AS (
    SELECT s.product_id, s.quantity, s.price, s.ordered_at
    FROM {{ ref('raw_sales') }} AS s
    ANTI JOIN repeated AS r ON r.order_id = s.order_id AND r.product_id = s.product_id
    UNION ALL
    SELECT * FROM latest_of_repeated
),
dated AS (
    SELECT product_id, quantity, price, date_trunc('month', ordered_at)::DATE AS month,
           (epoch_us({{ var('behaviour_as_of') }}::TIMESTAMP) - epoch_us(ordered_at))
               // (86400000000 * {{ var('behaviour_window_days') }}) AS windows_before
    FROM order_lines
    WHERE ordered_at < {{ var('behaviour_as_of') }}::TIMESTAMP
)
SELECT product_id, month,
       CASE WHEN windows_before < 2 THEN windows_before::INTEGER END AS window_index,
       sum(quantity)::BIGINT AS units,
       count(*)::BIGINT AS order_lines,
       sum(quantity * price) AS revenue
FROM dated
GROUP BY ALL
