-- Tags read from sales behaviour, one row per (product, tag), score in [0, 1]:
--   bestseller (attribute/popularity): in the top bestseller_top_share of its category's
--     products with sales in the window, ranked by units (ties share a rank; at least one
--     product per category), with at least bestseller_min_units. Score: its units / the
--     category's best seller's units (the top product scores 1).
--   trending (attribute/popularity): window units >= trending_min_growth x the previous
--     window's units and >= trending_min_units (a product new in the window qualifies).
--     Score: 1 - previous/current units, the share of its sales that is growth.
--   singles_day (Nov), christmas (Dec), summer (Jun-Aug), winter (Dec-Feb) (scene/sales_season):
--     a peak month of the product (sales_season_peaks) falls in that season. Score:
--     1 - 1/ratio for its strongest peak (ratio 2 scores 0.5, ratio 4 scores 0.75).
WITH ranked AS (
    SELECT *,
           rank() OVER (PARTITION BY category ORDER BY units DESC) AS category_rank,
           count(*) OVER (PARTITION BY category) AS category_products,
           max(units) OVER (PARTITION BY category) AS category_top_units
    FROM {{ ref('sales_by_product_window') }}
    WHERE units > 0
),
bestseller AS (
    SELECT product_id, 'bestseller' AS tag, 'attribute' AS tag_type, 'popularity' AS facet,
           units / category_top_units AS score,
           'rank ' || category_rank || ' of ' || category_products || ' in category '
               || coalesce('''' || category || '''', '(none)') || ': ' || units
               || ' units in the ' || {{ var('behaviour_window_days') }} || ' days to '
               || {{ var('behaviour_as_of') }} AS evidence
    FROM ranked
    -- round() keeps 0.1 * 30 from becoming 3.0000000000000004 and letting a 4th product in.
    WHERE category_rank <= greatest(1, ceil(round(
              {{ var('bestseller_top_share') }} * category_products, 9)))
      AND units >= {{ var('bestseller_min_units') }}
),
trending AS (
    SELECT product_id, 'trending' AS tag, 'attribute' AS tag_type, 'popularity' AS facet,
           1 - previous_units / units AS score,
           units || ' units in the ' || {{ var('behaviour_window_days') }} || ' days to '
               || {{ var('behaviour_as_of') }} || ' vs ' || previous_units
               || ' in the window before'
               || CASE WHEN previous_units = 0 THEN ' (new)'
                       ELSE ' (x' || round(units / previous_units, 2) || ')' END AS evidence
    FROM {{ ref('sales_by_product_window') }}
    WHERE units > 0
      AND units >= {{ var('trending_min_units') }}
      AND units >= {{ var('trending_min_growth') }} * previous_units
),
season_months (month_of_year, tag) AS (
    VALUES (11, 'singles_day'), (12, 'christmas'), (6, 'summer'), (7, 'summer'),
           (8, 'summer'), (12, 'winter'), (1, 'winter'), (2, 'winter')
),
seasonal AS (
    SELECT p.product_id, s.tag, 'scene' AS tag_type, 'sales_season' AS facet,
           max(1 - 1 / p.ratio) AS score,
           'peak months: ' || string_agg(strftime(p.month, '%Y-%m') || ' ' || p.units
               || ' units (' || round(p.ratio, 1) || 'x its monthly average '
               || round(p.average_units, 1) || ')', '; ' ORDER BY p.month) AS evidence
    FROM {{ ref('sales_season_peaks') }} AS p
    JOIN season_months AS s USING (month_of_year)
    GROUP BY p.product_id, s.tag
)
SELECT product_id, tag, tag_type, facet, score::DOUBLE AS score, evidence
FROM (
    SELECT * FROM bestseller
    UNION ALL SELECT * FROM trending
    UNION ALL SELECT * FROM seasonal
)
ORDER BY product_id, tag
