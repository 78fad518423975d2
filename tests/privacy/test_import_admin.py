import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from customers.models import Customer
from helpdesk import roles
from privacy.import_jobs import customer_import_execute
from privacy.models import CustomerImport
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CSV = b"name,email,phone,tier\nDee Novak,dee@example.com,+14155550199,gold\nBad Row,not-an-email,,\n"


@pytest.fixture
def admin_client(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    admin = UserFactory(username="root", role=roles.ADMINS)
    admin.is_staff = True
    admin.save()
    client.force_login(admin)
    return client


def test_upload_map_dry_run_then_import_with_progress(admin_client, django_capture_on_commit_callbacks):
    response = admin_client.post(
        reverse("admin:privacy_customerimport_add"), {"file": SimpleUploadedFile("people.csv", CSV)}
    )
    job = CustomerImport.objects.get()
    assert response.url == reverse("admin:privacy_customerimport_mapping", args=[job.pk])
    assert job.total_rows == 2 and job.mapping["tier"] == "attribute:tier"
    page = admin_client.get(response.url)
    assert page.status_code == 200 and "tier" in page.content.decode()

    mapping = {"col_0": "name", "col_1": "email", "col_2": "phone", "col_3": "attribute:tier", "dry": "1"}
    with django_capture_on_commit_callbacks() as queued:
        response = admin_client.post(reverse("admin:privacy_customerimport_mapping", args=[job.pk]), mapping)
    assert len(queued) == 1  # the task is queued once the job row is committed
    job.refresh_from_db()
    assert job.status == "pending" and job.dry_run
    progress = admin_client.get(reverse("admin:privacy_customerimport_progress", args=[job.pk]))
    assert b'http-equiv="refresh"' in progress.content  # the page follows the running job

    customer_import_execute(job_id=job.pk)  # what the worker runs

    job.refresh_from_db()
    assert job.status == "done" and job.processed_rows == 2 and job.report["counts"]["create"] == 1
    assert Customer.objects.count() == 0
    progress = admin_client.get(
        reverse("admin:privacy_customerimport_progress", args=[job.pk])
    ).content.decode()
    assert "not an email address" in progress and 'http-equiv="refresh"' not in progress

    mapping.pop("dry")
    mapping["run"] = "1"
    admin_client.post(reverse("admin:privacy_customerimport_mapping", args=[job.pk]), mapping)
    customer_import_execute(job_id=job.pk)
    job.refresh_from_db()
    assert job.report["counts"] == {"create": 1, "update": 0, "unchanged": 0, "refused": 1}
    assert Customer.objects.get().attributes == {"tier": "gold"}
    # The upload is personal data: gone once imported.
    assert not job.file


def test_a_bad_mapping_is_refused_and_nothing_is_queued(admin_client):
    admin_client.post(reverse("admin:privacy_customerimport_add"), {"file": SimpleUploadedFile("p.csv", CSV)})
    job = CustomerImport.objects.get()
    page = admin_client.post(
        reverse("admin:privacy_customerimport_mapping", args=[job.pk]),
        {"col_0": "name", "col_1": "ignore", "col_2": "ignore", "col_3": "ignore", "run": "1"},
        follow=True,
    )
    assert "at least one column" in page.content.decode()
    job.refresh_from_db()
    assert job.status == "mapping"


def test_a_file_that_is_not_utf8_is_refused_with_a_reason(admin_client):
    page = admin_client.post(
        reverse("admin:privacy_customerimport_add"),
        {"file": SimpleUploadedFile("p.csv", "nombre\nJosé".encode("latin-1"))},
    )
    assert "not UTF-8" in page.content.decode() and not CustomerImport.objects.exists()


def test_agents_cannot_import(client):
    agent = UserFactory(username="plain")
    agent.is_staff = True
    agent.save()
    client.force_login(agent)
    assert client.get(reverse("admin:privacy_customerimport_add")).status_code == 403
