-- How many feedback rows an apply covers (those of the given loads, or of all loads when
-- all_loads is 1) and how many of them cannot be applied (see feedback_rejects).
SELECT
    count(*) AS events,
    count(*) FILTER (WHERE reason IS NOT NULL) AS unapplied
FROM {{ ref('feedback_events') }}
WHERE {{ var('all_loads') }} = 1 OR load_id IN (SELECT load_id FROM {{ ref('loads') }})
