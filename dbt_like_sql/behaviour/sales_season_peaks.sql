-- Calendar months in which a product sold at least season_peak_ratio times its average
-- monthly units (and at least season_min_units), before behaviour_as_of. The average runs
-- over every month from the product's first sale to the month of behaviour_as_of, months
-- without sales counted as 0, so a product with one month of history has no peak.
WITH monthly AS (
    SELECT product_id, month, sum(units)::BIGINT AS units
    FROM {{ ref('sales_by_product_period') }}
    GROUP BY product_id, month
),
history AS (
    SELECT product_id,
           sum(units)::DOUBLE / (date_diff('month', min(month),
               date_trunc('month', {{ var('behaviour_as_of') }}::TIMESTAMP
                                   - INTERVAL 1 MICROSECOND)::DATE) + 1) AS average_units
    FROM monthly
    GROUP BY product_id
)
SELECT m.product_id, m.month, month(m.month) AS month_of_year, m.units, h.average_units,
       m.units / h.average_units AS ratio
FROM monthly AS m
JOIN history AS h USING (product_id)
WHERE m.units >= {{ var('season_peak_ratio') }} * h.average_units
  AND m.units >= {{ var('season_min_units') }}
