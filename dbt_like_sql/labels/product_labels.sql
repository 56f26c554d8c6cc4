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
path_values AS (
    -- a path value may be a JSON array of one or several paths: each gives its tags
    SELECT product_id, tag_type, field, level_names, separator, max_depth,
           max_single_product_share,
           CASE WHEN shape = 'path' AND starts_with(value, '[') AND json_valid(value)
                     AND json_type(value::JSON) = 'ARRAY'
                THEN from_json(value, '["VARCHAR"]') ELSE [value] END AS paths
    FROM ruled WHERE shape IN ('path', 'levels')
),
path_parts AS (
    SELECT * EXCLUDE (paths, one_path), string_split(one_path, separator) AS parts
    FROM (SELECT *, unnest(paths) AS one_path FROM path_values)
    WHERE one_path IS NOT NULL
),
path_levels AS (
    SELECT *, generate_subscripts(parts, 1) AS i FROM path_parts
),
path_all AS (
    -- levels past level_names are facets <name>_l<i>
    SELECT product_id, trim(parts[i]) AS tag, tag_type, field,
           coalesce(level_names[i], field || '_l' || i) AS facet,
           CASE WHEN i > 1 THEN nullif(trim(parts[i - 1]), '') END AS parent, i AS level,
           len(parts) AS depth, max_depth, max_single_product_share
    FROM path_levels
    WHERE nullif(trim(parts[i]), '') IS NOT NULL
),
path_value_products AS (
    SELECT field, level, tag, count(DISTINCT product_id) AS products
    FROM path_all WHERE max_single_product_share IS NOT NULL
    GROUP BY field, level, tag
),
path_leaf_shares AS (
    -- the share of the paths' last parts that one product alone carries
    SELECT l.field, any_value(l.max_single_product_share) AS max_share,
           avg((v.products = 1)::DOUBLE) AS single_share
    FROM (SELECT DISTINCT field, level, tag, max_single_product_share FROM path_all
          WHERE level = depth AND depth > 1 AND max_single_product_share IS NOT NULL) AS l
    JOIN path_value_products AS v USING (field, level, tag)
    GROUP BY l.field
),
path_kept AS (
    -- where most last parts belong to one product (a product name ends each path), those
    -- single-product last parts are dropped; then max_depth keeps the top levels only
    SELECT a.*
    FROM path_all AS a
    LEFT JOIN path_leaf_shares AS s ON s.field = a.field
    LEFT JOIN path_value_products AS v
        ON v.field = a.field AND v.level = a.level AND v.tag = a.tag
    WHERE NOT coalesce(a.level = a.depth AND a.depth > 1 AND s.single_share > s.max_share
                       AND v.products = 1, false)
      AND (a.max_depth IS NULL OR a.level <= a.max_depth)
),
path_level_shares AS (
    -- per level: the share of its distinct values that one product alone carries
    SELECT field, level, any_value(max_single_product_share) AS max_share,
           avg((products = 1)::DOUBLE) AS single_share
    FROM (SELECT field, level, tag,
                 any_value(max_single_product_share) AS max_single_product_share,
                 count(DISTINCT product_id) AS products
          FROM path_kept WHERE max_single_product_share IS NOT NULL
          GROUP BY field, level, tag)
    GROUP BY field, level
),
path_cut AS (
    -- the first level where that share passes max_single_product_share is dropped, with
    -- every level below it
    SELECT field, min(level) AS first_dropped
    FROM path_level_shares WHERE single_share > max_share GROUP BY field
),
path AS (
    SELECT a.product_id, a.tag, a.tag_type, a.facet, a.parent, a.level
    FROM path_kept AS a LEFT JOIN path_cut AS c ON c.field = a.field
    WHERE c.first_dropped IS NULL OR a.level < c.first_dropped
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
attr_docs AS (
    -- Ruby's hash syntax ("key"=>"value", nil) is read as JSON
    SELECT product_id, tag_type, field, keys, value_separator, synonym_from, synonym_to,
           value_from, value_to, attribute_doc(value) AS doc_text
    FROM ruled WHERE shape = 'attributes'
),
attr_items AS (
    -- a one-key object around a list ({"product_specification": [...]}) is unwrapped
    SELECT * EXCLUDE (doc),
           CASE WHEN json_type(doc) = 'OBJECT' AND len(json_keys(doc)) = 1
                     AND json_type(json_extract(doc, '$.*')[1]) = 'ARRAY'
                THEN json_extract(doc, '$.*')[1] ELSE doc END AS items
    FROM (SELECT * EXCLUDE (doc_text), doc_text::JSON AS doc FROM attr_docs
          WHERE json_valid(doc_text))
),
attr_entries AS (
    -- a list holds {key, value} objects ("name" for "key" too); an object maps key to value
    SELECT a.* EXCLUDE (items),
           CASE WHEN json_type(a.items) = 'ARRAY'
                THEN coalesce(json_extract_string(e.value, '$.key'),
                              json_extract_string(e.value, '$.name'))
                ELSE e.key END AS raw_key,
           CASE WHEN json_type(a.items) = 'ARRAY' THEN json_extract(e.value, '$.value')
                ELSE e.value END AS raw_value
    FROM attr_items AS a, json_each(a.items) AS e
    WHERE json_type(a.items) IN ('OBJECT', 'ARRAY')
),
attr_keyed AS (
    SELECT *, coalesce(synonym_to[list_position(synonym_from, attribute_key(raw_key))],
                       attribute_key(raw_key)) AS key_name,
           CASE json_type(raw_value) WHEN 'ARRAY' THEN from_json(raw_value, '["VARCHAR"]')
                ELSE [json_extract_string(raw_value, '$')] END AS raw_values
    FROM attr_entries WHERE raw_key IS NOT NULL
),
attr_values AS (
    SELECT product_id, tag_type, field, key_name, value_from, value_to,
           trim(unnest(CASE WHEN value_separator IS NULL THEN [one_value]
                            ELSE string_split(one_value, value_separator) END)) AS tag_value
    FROM (SELECT *, unnest(raw_values) AS one_value FROM attr_keyed
          WHERE key_name <> '' AND (len(keys) = 0 OR list_contains(keys, key_name)))
    WHERE one_value IS NOT NULL
),
attrs AS (
    SELECT product_id,
           coalesce(value_to[list_position(value_from, lower(tag_value))], tag_value) AS tag,
           tag_type, field || '.' || key_name AS facet, NULL AS parent, 1 AS level
    FROM attr_values
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
    UNION ALL SELECT *, 'catalog' FROM attrs
    UNION ALL SELECT *, 'lexicon' FROM lexicon
)
SELECT product_id, tag, tag_type, facet, any_value(parent) AS parent, min(level) AS level,
       min(source) AS source
FROM catalog_tags
WHERE tag IS NOT NULL AND tag <> ''
GROUP BY product_id, tag_type, facet, tag
