-- Every raw product row, normalised (NFKC, HTML and white space stripped), with its language,
-- price, and fate: cleaned (the latest valid version of its product), rejected (with a reason)
-- or superseded (a newer valid version of the same product exists).
WITH normalised AS (
    SELECT
        load_id,
        source_file,
        source_line,
        loaded_at,
        nullif(trim(nfkc(product_id)), '') AS product_id,
        clean_text(title) AS title,
        coalesce(clean_text(description), '') AS description,
        nullif(trim(nfkc(image_ref)), '') AS image_ref,
        nfkc(price_raw) AS price_text,
        parse_timestamp(nfkc(updated_at_raw)) AS updated_at,
        nullif(trim(updated_at_raw), '') AS updated_at_text,
        tag_fields
    FROM {{ ref('raw_products') }}
),
reasoned AS (
    SELECT
        *,
        CASE
            WHEN product_id IS NULL THEN 'missing_id'
            WHEN length(product_id) > {{ var('max_id_chars') }} THEN 'id_too_long'
            WHEN title IS NULL OR title = '' THEN 'empty_title'
            WHEN length(title) > {{ var('max_title_chars') }} THEN 'title_too_long'
        END AS reject_reason
    FROM normalised
),
ranked AS (
    SELECT
        *,
        CASE WHEN reject_reason IS NULL THEN row_number() OVER (
            PARTITION BY product_id, reject_reason IS NULL
            ORDER BY updated_at DESC NULLS LAST, loaded_at DESC, source_file DESC,
                     source_line DESC
        ) END AS version_rank,
        han_words(title || ' ' || description) AS zh_words,
        latin_words(title || ' ' || description) AS en_words
    FROM reasoned
)
SELECT
    load_id,
    source_file,
    source_line,
    loaded_at,
    product_id,
    -- a rejected title may be huge: keep only its head, its length goes in the detail
    CASE WHEN reject_reason = 'title_too_long' THEN left(title, 200) ELSE title END AS title,
    CASE WHEN reject_reason IS NULL THEN description ELSE left(description, 200) END
        AS description,
    lang_from_counts(zh_words, en_words) AS text_lang,
    image_ref,
    price_amount(price_text) AS price,
    price_currency(price_text) AS currency,
    updated_at,
    -- a time stamp given but not in an accepted form (see the parse_timestamp macro)
    (updated_at_text IS NOT NULL AND updated_at IS NULL) AS updated_at_unparsed,
    updated_at_text,
    tag_fields,
    CASE WHEN reject_reason IS NOT NULL THEN 'rejected'
         WHEN version_rank = 1 THEN 'cleaned'
         ELSE 'superseded' END AS row_status,
    reject_reason,
    CASE reject_reason
        WHEN 'missing_id' THEN 'product id is empty'
        WHEN 'id_too_long' THEN 'product id has ' || length(product_id) || ' characters (max '
            || {{ var('max_id_chars') }} || ')'
        WHEN 'empty_title' THEN 'title is empty after cleaning'
        WHEN 'title_too_long' THEN 'title has ' || length(title) || ' characters (max '
            || {{ var('max_title_chars') }} || ')'
    END AS reject_detail
FROM ranked
