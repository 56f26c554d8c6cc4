-- Units per product in the behaviour window (the behaviour_window_days days ending at
-- behaviour_as_of) and in the window of the same length just before it, with the product's
-- category: its category tag of the deepest level in product_labels (ties: the first tag in
-- text order); NULL when it has none (those products are ranked together).
WITH category AS (
    SELECT product_id, first(tag ORDER BY level DESC, tag) AS category
    FROM {{ ref('product_labels') }}
    WHERE tag_type = 'category'
    GROUP BY product_id
),
windows AS (
    SELECT product_id,
           coalesce(sum(units) FILTER (WHERE window_index = 0), 0)::BIGINT AS units,
           coalesce(sum(units) FILTER (WHERE window_index = 1), 0)::BIGINT AS previous_units,
           coalesce(sum(revenue) FILTER (WHERE window_index = 0), 0) AS revenue
    FROM {{ ref('sales_by_product_period') }}
    WHERE window_index IS NOT NULL
    GROUP BY product_id
)
SELECT w.product_id, c.category, w.units, w.previous_units, w.revenue
FROM windows AS w
LEFT JOIN category AS c USING (product_id)
