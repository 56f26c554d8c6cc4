-- The catalog's own tags per product (the ground truth the tagger learns from), read from the
-- profile's tag columns by the rules in label_rules, plus style tags mined from the text
-- with the profile's lexicon.
WITH entries AS (
    SELECT product_id, unnest(map_entries(tag_fields)) AS e
    FROM {{ ref('cleaned_products') }}
),
ruled AS (
    SELECT x.product_id, trim(x.e.value) AS value, r.*
    FROM entries AS x
    JOIN {{ ref('label_rules') }} AS r ON r.field = x.e.key
    WHERE nullif(trim(x.e.value), '') IS NOT NULL
),
plain AS (
    SELECT product_id, value AS tag, tag_type, field AS facet, NULL AS parent, 1 AS level
    FROM ruled WHERE shape = 'plain'
),
multi AS (
    SELECT product_id, trim(unnest(string_split(value, separator))) AS tag, tag_type,
           field AS facet, NULL AS parent, 1 AS level
    FROM ruled WHERE shape = 'multi'
),
path_parts AS (
    SELECT product_id, tag_type, field, level_names, string_split(value, separator) AS parts
    FROM ruled WHERE shape IN ('path', 'levels')
),
path_levels AS (
    SELECT *, generate_subscripts(parts, 1) AS i FROM path_parts
),
path AS (
    SELECT product_id, trim(parts[i]) AS tag, tag_type,
           coalesce(level_names[i], field || '_l' || i) AS facet,
           CASE WHEN i > 1 THEN nullif(trim(parts[i - 1]), '') END AS parent, i AS level
    FROM path_levels
),
kv_pairs AS (
    SELECT product_id, tag_type, keys, kv_separator,
           unnest(string_split(value, pair_separator)) AS pair
    FROM ruled WHERE shape = 'key_value'
),
kv_split AS (
    SELECT product_id, tag_type, keys,
           trim(left(pair, strpos(pair, kv_separator) - 1)) AS facet,
           trim(substr(pair, strpos(pair, kv_separator) + length(kv_separator))) AS tag
    FROM kv_pairs WHERE strpos(pair, kv_separator) > 0
),
kv AS (
    SELECT product_id, tag, tag_type, facet, NULL AS parent, 1 AS level
    FROM kv_split WHERE list_contains(list_transform(keys, k -> lower(k)), lower(facet))
),
lexicon_text AS (
    SELECT product_id, lower(title || ' ' || description) AS text,
           latin_match_text(title || ' ' || description) AS latin_text
    FROM {{ ref('cleaned_products') }}
),
lexicon AS (
    SELECT t.product_id, l.tag, l.tag_type, l.facet, NULL AS parent, 1 AS level
    FROM lexicon_text AS t
    JOIN {{ ref('style_lexicon') }} AS l
        ON contains(CASE l.script WHEN 'han' THEN t.text ELSE t.latin_text END, l.needle)
),
catalog_tags AS (
    SELECT *, 'catalog' AS source FROM plain
    UNION ALL SELECT *, 'catalog' FROM multi
    UNION ALL SELECT *, 'catalog' FROM path
    UNION ALL SELECT *, 'catalog' FROM kv
    UNION ALL SELECT *, 'lexicon' FROM lexicon
)
SELECT product_id, tag, tag_type, facet, any_value(parent) AS parent, min(level) AS level,
       min(source) AS source
FROM catalog_tags
WHERE tag IS NOT NULL AND tag <> ''
GROUP BY product_id, tag_type, facet, tag
