from django.utils import translation


def test_the_privacy_and_audit_catalogs_speak_spanish():
    with translation.override("es"):
        assert translation.gettext("Customers") == "Clientes"
        assert translation.gettext("Erase this customer") == "Suprimir este cliente"
        assert (
            translation.gettext("Audit entries are never changed.")
            == "Las entradas de auditoría nunca se modifican."
        )
        assert translation.ngettext("%(n)s row.", "%(n)s rows.", 3) % {"n": 3} == "3 filas."
