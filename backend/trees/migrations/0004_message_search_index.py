from django.db import migrations

# Full-text search over messages in each message's own language: a text search
# configuration per language code (PostgreSQL's built-in ones; "simple" for the rest),
# and an index on the same expression the moderators' search uses.
SEARCH = """
CREATE FUNCTION chorus_ts_config(lang text) RETURNS regconfig
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE split_part(lower(lang), '-', 1)
        WHEN 'en' THEN 'english' WHEN 'de' THEN 'german' WHEN 'es' THEN 'spanish'
        WHEN 'fr' THEN 'french' WHEN 'it' THEN 'italian' WHEN 'pt' THEN 'portuguese'
        WHEN 'nl' THEN 'dutch' WHEN 'ru' THEN 'russian' WHEN 'sv' THEN 'swedish'
        WHEN 'da' THEN 'danish' WHEN 'fi' THEN 'finnish' WHEN 'hu' THEN 'hungarian'
        WHEN 'no' THEN 'norwegian' WHEN 'ro' THEN 'romanian' WHEN 'tr' THEN 'turkish'
        ELSE 'simple' END::regconfig
$$;
CREATE INDEX message_text_search ON trees_message
    USING gin (to_tsvector(chorus_ts_config(lang), text));
"""

DROP = """
DROP INDEX message_text_search;
DROP FUNCTION chorus_ts_config(text);
"""


class Migration(migrations.Migration):
    dependencies = [("trees", "0003_moderator_edits_make_reviews_stale")]

    operations = [migrations.RunSQL(SEARCH, DROP)]
