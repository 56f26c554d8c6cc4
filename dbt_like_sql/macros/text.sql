-- Text cleaning shared by the models: Unicode NFKC (full-width to half-width), HTML tags and
-- common entities removed, byte-order marks and zero-width characters dropped, runs of white space folded to one space.
CREATE OR REPLACE TEMP MACRO clean_text(s) AS
    trim(regexp_replace(
        replace(replace(replace(replace(replace(replace(replace(
            regexp_replace(regexp_replace(nfkc(s), '[\x{FEFF}\x{200B}-\x{200D}]', '', 'g'),
                '<[^>]*>', ' ', 'g'),
            '&nbsp;', ' '), '&lt;', '<'), '&gt;', '>'), '&quot;', '"'), '&#39;', ''''),
            '&apos;', ''''), '&amp;', '&'),
        '\s+', ' ', 'g'));

-- Words of each script: two Han characters count as one Chinese word.
CREATE OR REPLACE TEMP MACRO han_words(s) AS
    length(regexp_replace(coalesce(s, ''), '[^\p{Han}]', '', 'g')) / 2.0;
CREATE OR REPLACE TEMP MACRO latin_words(s) AS
    len(regexp_extract_all(coalesce(s, ''), '[A-Za-z]+'))::DOUBLE;

-- zh / en / mixed / other from the share of Chinese words among Chinese and Latin words.
-- Pass columns, not expressions: a macro argument is expanded once per use.
CREATE OR REPLACE TEMP MACRO lang_from_counts(zh, en) AS
    CASE WHEN zh + en = 0 THEN 'other'
         WHEN zh / (zh + en) >= 0.8 THEN 'zh'
         WHEN zh / (zh + en) <= 0.2 THEN 'en'
         ELSE 'mixed' END;

-- ISO currency from the symbols and words shops write next to a price.
CREATE OR REPLACE TEMP MACRO price_currency(p) AS
    CASE WHEN p IS NULL OR trim(p) = '' THEN NULL
         WHEN regexp_matches(p, '¥|元|(?i:rmb|cny)') THEN 'CNY'
         WHEN regexp_matches(p, '₹|(?i:\brs\.?|inr)') THEN 'INR'
         WHEN regexp_matches(p, '€|(?i:eur)') THEN 'EUR'
         WHEN regexp_matches(p, '\$|(?i:usd)') THEN 'USD'
         END;

-- The amount in a price string: thousands separators dropped, first number kept.
CREATE OR REPLACE TEMP MACRO price_amount(p) AS
    TRY_CAST(nullif(regexp_extract(replace(p, ',', ''), '[0-9]+(\.[0-9]+)?'), '') AS DOUBLE);

-- Latin text prepared for lexicon matching: lower case, every run of other characters (Han
-- included) one space, padded with spaces, so a padded Latin term (made the same way in
-- Python by tag_pipeline.lib.catalog.rules.term_needle) matches whole words only.
CREATE OR REPLACE TEMP MACRO latin_match_text(s) AS
    ' ' || regexp_replace(lower(s), '[^a-z0-9]+', ' ', 'g') || ' ';

-- An attribute key as a facet name: lower case, each run of characters other than letters and
-- digits one '_' ('Ideal For' -> 'ideal_for'); tag_pipeline.lib.catalog.profile.normalise_key
-- folds the profile's keys the same way.
CREATE OR REPLACE TEMP MACRO attribute_key(k) AS
    trim(regexp_replace(lower(nfkc(k)), '[^\p{L}\p{N}]+', '_', 'g'), '_');

-- A catalog timestamp as UTC, or NULL where it is none of the accepted forms: ISO 8601 with
-- 'T' or a space (2016-03-25 22:59:23, 2016-03-25T22:59:23.5), a date alone, slashes
-- (2016/03/25 10:00), an offset written +0000, +00:00, +00, Z, UTC or GMT (with or without a
-- space before it), and Unix epoch seconds (10 digits) or milliseconds (13 digits). A time
-- without an offset is taken as UTC. Day-first dates (25/03/2016) are ambiguous: NULL.
CREATE OR REPLACE TEMP MACRO parse_timestamp(s) AS
    CASE
        WHEN s IS NULL OR trim(s) = '' THEN NULL
        WHEN regexp_matches(trim(s), '^\d{10}(\.\d+)?$')
            THEN timezone('UTC', to_timestamp(trim(s)::DOUBLE))
        WHEN regexp_matches(trim(s), '^\d{13}$')
            THEN timezone('UTC', to_timestamp(trim(s)::DOUBLE / 1000))
        WHEN regexp_matches(trim(s), '\d:\d{2}(:\d{2}(\.\d+)?)?\s*([+-]\d{2}(:?\d{2})?|[Zz]|UTC|GMT)$')
            -- the offset as +HH:MM, right after the time, which gets its seconds
            THEN timezone('UTC', TRY_CAST(regexp_replace(regexp_replace(regexp_replace(
                regexp_replace(trim(s), '\s*(UTC|GMT|[Zz])$', '+00:00'),
                '\s*([+-]\d{2})$', '\1:00'),
                '\s*([+-]\d{2}):?(\d{2})$', '\1:\2'),
                '([ T]\d{1,2}:\d{2})([+-]\d{2}:\d{2})$', '\1:00\2') AS TIMESTAMPTZ))
        ELSE TRY_CAST(trim(s) AS TIMESTAMP)
    END;

-- An attributes value as JSON text: Ruby's hash syntax ("key"=>"value", nil) rewritten as JSON
-- (JSON itself passes unchanged); json_valid tells whether it is a document.
CREATE OR REPLACE TEMP MACRO attribute_doc(v) AS
    regexp_replace(regexp_replace(v, '=>\s*nil\b', '=>null', 'g'), '"\s*=>\s*', '":', 'g');
