import csv
import io

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.utils import DatabaseError

from audit.models import AuditAction, AuditEntry, AuditLogIsAppendOnly
from audit.services import audit_record
from helpdesk import roles
from tests.factories import ChannelFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_entries_cannot_be_changed_or_deleted_through_the_orm(agent):
    entry = audit_record(action=AuditAction.CUSTOMER_VIEWED, actor=agent, target_type="customer", target_id=1)
    entry.details = {"x": 1}
    with pytest.raises(AuditLogIsAppendOnly):
        entry.save()
    with pytest.raises(AuditLogIsAppendOnly):
        entry.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(details={})
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get(pk=entry.pk).details == {}


@pytest.mark.parametrize(
    "sql",
    ["UPDATE audit_auditentry SET details = '{}'", "DELETE FROM audit_auditentry"],
    ids=["update", "delete"],
)
def test_the_database_refuses_updates_and_deletes_from_any_client(agent, sql):
    audit_record(
        action=AuditAction.CUSTOMER_VIEWED, actor=agent, target_type="customer", target_id=1, details={"a": 1}
    )
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert AuditEntry.objects.get(action=AuditAction.CUSTOMER_VIEWED).details == {"a": 1}


def test_logins_and_failed_logins_are_recorded_with_the_address(client):
    user = UserFactory(username="carla")
    assert (
        client.post("/login/", {"username": "carla", "password": "wrong"}, REMOTE_ADDR="10.1.2.3").status_code
        == 200
    )
    assert (
        client.post(
            "/login/", {"username": "carla", "password": "pass-word-123"}, REMOTE_ADDR="10.1.2.4"
        ).status_code
        == 302
    )
    failed = AuditEntry.objects.get(action=AuditAction.LOGIN_FAILED)
    assert failed.details == {"username": "carla"} and failed.ip == "10.1.2.3" and failed.actor is None
    login = AuditEntry.objects.get(action=AuditAction.LOGIN)
    assert login.actor == user and login.ip == "10.1.2.4"


def test_role_changes_are_recorded_with_who_did_them(client):
    admin = UserFactory(username="root", role=roles.ADMINS)
    admin.is_staff = admin.is_superuser = True
    admin.save()
    target = UserFactory(username="dani")
    supervisors, _ = Group.objects.get_or_create(name=roles.SUPERVISORS)
    before = AuditEntry.objects.filter(action=AuditAction.ROLE_CHANGED).count()
    client.force_login(admin)
    response = client.post(
        f"/admin/auth/user/{target.pk}/change/",
        {
            "username": "dani",
            "first_name": "",
            "last_name": "",
            "email": "",
            "is_active": "on",
            "groups": [supervisors.pk],
            "date_joined_0": "2026-12-01",
            "date_joined_1": "10:00:00",
            "initial-date_joined_0": "2026-12-01",
            "initial-date_joined_1": "10:00:00",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    entries = AuditEntry.objects.filter(action=AuditAction.ROLE_CHANGED, target_id=str(target.pk)).order_by(
        "id"
    )
    assert entries.count() > before
    names = [n for e in entries if e.actor == admin for n in e.details["names"]]
    assert roles.SUPERVISORS in names
    # Adding from the group's side is recorded per user too.
    supervisors.user_set.add(UserFactory(username="eli"))
    eli = AuditEntry.objects.filter(action=AuditAction.ROLE_CHANGED).latest("id")
    assert eli.details["names"] == [roles.SUPERVISORS] and eli.details["change"] == "add"


def test_channel_credential_changes_record_the_keys_never_the_values():
    channel = ChannelFactory(credentials={"secret": "first-secret", "callback_url": "http://x"})
    created = AuditEntry.objects.get(action=AuditAction.CHANNEL_CREDENTIALS_CHANGED)
    assert created.details["keys"] == ["callback_url", "secret"] and created.details["created"] is True
    channel.name = "Renamed"
    channel.save()
    assert AuditEntry.objects.filter(action=AuditAction.CHANNEL_CREDENTIALS_CHANGED).count() == 1
    channel.credentials = {**channel.credentials, "secret": "second-secret"}
    channel.save()
    changed = AuditEntry.objects.filter(action=AuditAction.CHANNEL_CREDENTIALS_CHANGED).latest("id")
    assert changed.details["keys"] == ["secret"] and changed.target_id == str(channel.pk)
    assert "second-secret" not in str(changed.details) and "first-secret" not in str(changed.details)


def test_admins_read_filter_and_export_the_log_and_nobody_edits_it(client, django_assert_max_num_queries):
    admin = UserFactory(username="root", role=roles.ADMINS)
    admin.is_staff = True
    admin.save()
    agent = UserFactory(username="plain")
    agent.is_staff = True
    agent.save()
    for n in range(30):
        audit_record(action=AuditAction.CUSTOMER_VIEWED, actor=agent, target_type="customer", target_id=n)
    audit_record(action=AuditAction.CUSTOMER_ERASED, actor=admin, target_type="customer", target_id=99)

    client.force_login(agent)
    assert client.get("/admin/audit/auditentry/").status_code == 403
    client.force_login(admin)
    with django_assert_max_num_queries(12):
        page = client.get("/admin/audit/auditentry/", {"action__exact": "customer_erased"})
    assert page.status_code == 200 and page.context["cl"].result_count == 1
    entry = AuditEntry.objects.filter(action=AuditAction.CUSTOMER_VIEWED).first()
    assert client.post(f"/admin/audit/auditentry/{entry.pk}/delete/").status_code == 403
    assert client.get("/admin/audit/auditentry/add/").status_code == 403
    change = client.post(f"/admin/audit/auditentry/{entry.pk}/change/", {"action": "login"})
    assert change.status_code == 403
    ids = list(AuditEntry.objects.filter(action=AuditAction.CUSTOMER_VIEWED).values_list("pk", flat=True))
    response = client.post("/admin/audit/auditentry/", {"action": "export_csv", "_selected_action": ids})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 30 and {r["action"] for r in rows} == {"customer_viewed"}
    assert AuditEntry.objects.filter(action=AuditAction.AUDIT_EXPORTED, actor=admin).exists()
