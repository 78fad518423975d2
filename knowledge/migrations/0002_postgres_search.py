"""PostgreSQL search: unaccent and pg_trgm, the Spanish and English configurations
(stemming after unaccent), and the GIN indexes. Nothing on SQLite (the demo), whose
search runs in Python (knowledge/search.py)."""

from django.db import migrations

FORWARD = """
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'kb_es') THEN
    CREATE TEXT SEARCH CONFIGURATION kb_es (COPY = spanish);
    ALTER TEXT SEARCH CONFIGURATION kb_es
      ALTER MAPPING FOR hword, hword_part, word WITH unaccent, spanish_stem;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'kb_en') THEN
    CREATE TEXT SEARCH CONFIGURATION kb_en (COPY = english);
    ALTER TEXT SEARCH CONFIGURATION kb_en
      ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem;
  END IF;
END $$;
CREATE INDEX IF NOT EXISTS kb_article_search_vector ON knowledge_article USING gin (search_vector);
-- GiST, not GIN: it answers "the nearest word" (ORDER BY <-> LIMIT 1) straight from the index.
CREATE INDEX IF NOT EXISTS kb_searchword_trgm ON knowledge_searchword USING gist (word gist_trgm_ops);
"""

BACKWARD = """
DROP INDEX IF EXISTS kb_searchword_trgm;
DROP INDEX IF EXISTS kb_article_search_vector;
DROP TEXT SEARCH CONFIGURATION IF EXISTS kb_en;
DROP TEXT SEARCH CONFIGURATION IF EXISTS kb_es;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
