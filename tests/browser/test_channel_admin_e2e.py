"""The channel admin in Chromium: only the chosen kind's credential fields show."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import off_loop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_kind_picks_its_credential_fields(asgi_server, browser_contexts, django_user_model):
    off_loop(django_user_model.objects.create_superuser, "root", "root@example.com", "pw-123456")
    page = browser_contexts().new_page()
    page.goto(asgi_server + "/admin/login/?next=/admin/channels_adapters/channel/add/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw-123456")
    page.click("input[type=submit]")
    page.wait_for_url("**/channel/add/")
    page.select_option("#id_kind", "telegram")
    expect(page.locator("#id_credential_bot_token")).to_be_visible()
    expect(page.locator("#id_credential_bot_token")).to_have_attribute("type", "password")
    expect(page.locator("#id_credential_page_id")).to_be_hidden()
    page.select_option("#id_kind", "facebook")
    expect(page.locator("#id_credential_page_id")).to_be_visible()
    expect(page.locator("#id_credential_bot_token")).to_be_hidden()
