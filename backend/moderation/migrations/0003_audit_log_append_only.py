from django.db import migrations

# Row-level triggers refuse UPDATE and DELETE on the audit log, whoever asks. TRUNCATE (an
# owner's administrative operation, also how test runs empty their tables) is not a row
# operation; production runs the application as a role that does not own the table.
APPEND_ONLY = """
CREATE FUNCTION moderation_auditentry_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER moderation_auditentry_no_update_or_delete
    BEFORE UPDATE OR DELETE ON moderation_auditentry
    FOR EACH ROW EXECUTE FUNCTION moderation_auditentry_append_only();
"""

DROP = """
DROP TRIGGER moderation_auditentry_no_update_or_delete ON moderation_auditentry;
DROP FUNCTION moderation_auditentry_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("moderation", "0002_audit_log")]

    operations = [migrations.RunSQL(APPEND_ONLY, DROP)]
