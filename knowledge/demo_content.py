# ruff: noqa: E501 - prose
"""The demo's help center: twelve topics in Spanish and English (the quality set,
tests/fixtures/kb_questions.json, is labelled against these slugs)."""

CATEGORIES = {
    "orders": {"es": ("Pedidos y envíos", "pedidos"), "en": ("Orders and shipping", "orders")},
    "payments": {"es": ("Pagos y facturas", "pagos"), "en": ("Payments and invoices", "payments")},
    "account": {"es": ("Tu cuenta", "cuenta"), "en": ("Your account", "account")},
    "returns": {"es": ("Devoluciones y garantía", "devoluciones"), "en": ("Returns and warranty", "returns")},
}

# (topic, category, {lang: (slug, title, keywords, summary, body)})
ARTICLES = [
    ("refund", "returns", {
        "es": ("cuando-recibo-mi-reembolso", "¿Cuándo recibo mi reembolso?",
               "reembolso, devolver dinero, abono, cobro, reintegro",
               "Los reembolsos llegan en 5 a 10 días hábiles desde que recibimos el producto devuelto.",
               "Cuando el almacén recibe y revisa tu devolución, emitimos el **reembolso** al mismo medio de "
               "pago. El abono tarda de 5 a 10 días hábiles en verse en tu cuenta bancaria o tarjeta.\n\n"
               "- Te enviamos un correo cuando el reembolso sale.\n- Si pagaste con PayPal suele ser en 24 horas."),
        "en": ("when-do-i-get-my-refund", "When do I get my refund?",
               "refund, money back, reimburse, credit",
               "Refunds reach you 5 to 10 business days after we receive the returned item.",
               "Once the warehouse receives and checks your return, we issue the **refund** to the original "
               "payment method. It takes 5 to 10 business days to show on your bank account or card.\n\n"
               "- We email you when the refund is sent.\n- PayPal refunds usually arrive within 24 hours."),
    }),
    ("return", "returns", {
        "es": ("como-devolver-un-producto", "Cómo devolver un producto",
               "devolución, devolver, etiqueta, cambiar producto, 30 días",
               "Tienes 30 días para devolver un producto: pide la etiqueta desde Mis pedidos.",
               "Puedes **devolver** cualquier producto en los 30 días siguientes a la entrega.\n\n"
               "1. Entra en *Mis pedidos* y elige el pedido.\n2. Pulsa *Devolver* y descarga la etiqueta.\n"
               "3. Lleva el paquete a un punto de recogida.\n\nLa devolución es gratuita en la península."),
        "en": ("how-to-return-an-item", "How to return an item",
               "return, send back, return label, exchange, 30 days",
               "You have 30 days to return an item: get the return label from My orders.",
               "You can **return** any item within 30 days of delivery.\n\n"
               "1. Go to *My orders* and pick the order.\n2. Click *Return* and download the label.\n"
               "3. Drop the parcel at a pickup point.\n\nReturns are free within the mainland."),
    }),
    ("tracking", "orders", {
        "es": ("donde-esta-mi-pedido", "¿Dónde está mi pedido?",
               "seguimiento, rastrear, envío, paquete, no llega, localizar",
               "Sigue tu paquete con el enlace de seguimiento del correo de envío o en Mis pedidos.",
               "Cuando tu pedido sale del almacén te enviamos un correo con el **número de seguimiento**. "
               "También lo ves en *Mis pedidos*. Si el paquete no se mueve en 3 días, escríbenos."),
        "en": ("where-is-my-order", "Where is my order?",
               "tracking, track, shipment, parcel, package, not arrived",
               "Track your parcel with the tracking link in the shipping email or in My orders.",
               "When your order leaves the warehouse we email you the **tracking number**. You can also "
               "find it in *My orders*. If the parcel has not moved for 3 days, write to us."),
    }),
    ("shipping", "orders", {
        "es": ("plazos-y-gastos-de-envio", "Plazos y gastos de envío",
               "gastos de envío, cuánto tarda, entrega, envío gratis, coste envío",
               "El envío estándar tarda 2 a 4 días y es gratis desde 50 €; el urgente llega en 24 horas.",
               "El **envío estándar** tarda de 2 a 4 días laborables y cuesta 4,95 €, gratis a partir de 50 €. "
               "El **envío urgente** llega en 24 horas por 9,95 €. A las islas, de 5 a 7 días."),
        "en": ("shipping-times-and-costs", "Shipping times and costs",
               "shipping cost, delivery time, how long, free shipping, express",
               "Standard shipping takes 2 to 4 days and is free over 50 €; express arrives in 24 hours.",
               "**Standard shipping** takes 2 to 4 working days and costs 4.95 €, free over 50 €. "
               "**Express shipping** arrives in 24 hours for 9.95 €. Islands take 5 to 7 days."),
    }),
    ("address", "orders", {
        "es": ("cambiar-la-direccion-de-entrega", "Cambiar la dirección de entrega",
               "dirección, cambiar dirección, domicilio, entrega en otra dirección",
               "Puedes cambiar la dirección de entrega desde Mis pedidos mientras el pedido no haya salido.",
               "Mientras el pedido esté *en preparación* puedes **cambiar la dirección** en *Mis pedidos* > "
               "*Editar envío*. Si ya salió, pide al transportista que lo entregue en otra dirección desde "
               "el enlace de seguimiento."),
        "en": ("change-the-delivery-address", "Change the delivery address",
               "address, change address, deliver elsewhere, wrong address",
               "You can change the delivery address in My orders while the order has not shipped.",
               "While the order is *being prepared* you can **change the address** in *My orders* > "
               "*Edit shipping*. Once shipped, ask the carrier to redirect it from the tracking link."),
    }),
    ("cancel", "orders", {
        "es": ("cancelar-un-pedido", "Cancelar un pedido",
               "cancelar, anular pedido, cancelación, ya no lo quiero",
               "Cancela el pedido en Mis pedidos antes de que salga del almacén; después, devuélvelo.",
               "Puedes **cancelar** un pedido desde *Mis pedidos* > *Cancelar* mientras no haya salido del "
               "almacén. Te devolvemos el importe al momento. Si ya salió, recházalo o haz una devolución."),
        "en": ("cancel-an-order", "Cancel an order",
               "cancel, cancellation, cancel purchase, do not want it anymore",
               "Cancel the order in My orders before it leaves the warehouse; after that, return it.",
               "You can **cancel** an order from *My orders* > *Cancel* as long as it has not left the "
               "warehouse. The amount is refunded at once. If it has shipped, refuse it or return it."),
    }),
    ("payment_methods", "payments", {
        "es": ("formas-de-pago", "Formas de pago aceptadas",
               "pagar, formas de pago, tarjeta, paypal, bizum, transferencia, plazos",
               "Aceptamos tarjeta, PayPal, Bizum y pago a plazos desde 100 €.",
               "Puedes **pagar** con tarjeta Visa o Mastercard, PayPal, Bizum o transferencia. "
               "Para compras desde 100 € ofrecemos **pago a plazos** en 3 meses sin intereses."),
        "en": ("payment-methods", "Accepted payment methods",
               "pay, payment methods, card, paypal, bank transfer, installments",
               "We accept cards, PayPal, bank transfer, and installments from 100 €.",
               "You can **pay** with Visa or Mastercard, PayPal or bank transfer. For purchases from "
               "100 € we offer **installments** over 3 months with no interest."),
    }),
    ("declined", "payments", {
        "es": ("pago-rechazado", "Mi pago ha sido rechazado",
               "pago rechazado, tarjeta rechazada, error al pagar, denegado, no puedo pagar",
               "Un pago rechazado suele deberse al banco: revisa los datos, el límite y la autenticación 3D Secure.",
               "Si tu **tarjeta es rechazada**, comprueba la fecha de caducidad y el CVV, que tengas saldo o "
               "límite, y que hayas confirmado la autenticación **3D Secure** en la app de tu banco. "
               "No se te cobra nada por un pago rechazado."),
        "en": ("my-payment-was-declined", "My payment was declined",
               "payment declined, card declined, payment failed, payment error, cannot pay",
               "A declined payment is usually the bank's: check the card details, the limit and 3D Secure.",
               "If your **card is declined**, check the expiry date and CVV, your balance or limit, and "
               "that you approved the **3D Secure** check in your bank's app. A declined payment is never "
               "charged."),
    }),
    ("invoice", "payments", {
        "es": ("solicitar-una-factura", "Solicitar una factura",
               "factura, nif, cif, datos fiscales, empresa, recibo",
               "Descarga la factura en Mis pedidos; para ponerla a nombre de una empresa añade el CIF.",
               "La **factura** de cada pedido se descarga en *Mis pedidos* > *Factura*. Para emitirla a "
               "nombre de una empresa, añade tus **datos fiscales** (CIF o NIF) en *Mi cuenta* antes de "
               "comprar, o escríbenos en los 30 días siguientes."),
        "en": ("request-an-invoice", "Request an invoice",
               "invoice, receipt, vat number, company details, bill",
               "Download the invoice in My orders; add your VAT number to have it issued to a company.",
               "Each order's **invoice** can be downloaded from *My orders* > *Invoice*. To have it "
               "issued to a company, add your **VAT number** in *My account* before buying, or write to "
               "us within 30 days."),
    }),
    ("password", "account", {
        "es": ("restablecer-la-contrasena", "Restablecer la contraseña",
               "contraseña, olvidé la contraseña, no puedo entrar, acceso, iniciar sesión, clave",
               "Pulsa «¿Olvidaste tu contraseña?» en la pantalla de acceso y sigue el enlace del correo.",
               "Si no puedes **iniciar sesión**, pulsa *¿Olvidaste tu contraseña?* en la pantalla de acceso. "
               "Te enviamos un enlace válido durante 1 hora para crear una **contraseña** nueva. "
               "Revisa la carpeta de spam si no llega."),
        "en": ("reset-your-password", "Reset your password",
               "password, forgot password, cannot log in, login, sign in, locked out",
               "Click 'Forgot your password?' on the sign-in page and follow the link we email you.",
               "If you cannot **sign in**, click *Forgot your password?* on the sign-in page. We email "
               "you a link, valid for 1 hour, to set a new **password**. Check your spam folder if it "
               "does not arrive."),
    }),
    ("delete_account", "account", {
        "es": ("borrar-mi-cuenta", "Borrar mi cuenta y mis datos",
               "borrar cuenta, eliminar cuenta, darse de baja, datos personales, privacidad, rgpd",
               "Borra tu cuenta en Mi cuenta > Privacidad; eliminamos tus datos personales en 30 días.",
               "Para **eliminar tu cuenta** entra en *Mi cuenta* > *Privacidad* > *Borrar cuenta*. "
               "Eliminamos tus **datos personales** en un plazo de 30 días, salvo las facturas que la ley "
               "nos obliga a guardar."),
        "en": ("delete-my-account", "Delete my account and my data",
               "delete account, close account, remove my data, personal data, privacy, gdpr",
               "Delete your account in My account > Privacy; we erase your personal data within 30 days.",
               "To **delete your account** go to *My account* > *Privacy* > *Delete account*. We erase "
               "your **personal data** within 30 days, except the invoices the law requires us to keep."),
    }),
    ("warranty", "returns", {
        "es": ("producto-defectuoso-o-roto", "Producto defectuoso, roto o garantía",
               "roto, defectuoso, dañado, no funciona, garantía, averiado, llegó mal",
               "Si el producto llegó roto o falla, tienes 3 años de garantía: mándanos una foto desde Mis pedidos.",
               "Todos los productos tienen **3 años de garantía**. Si llegó **roto o dañado**, o deja de "
               "funcionar, abre una incidencia en *Mis pedidos* > *Tengo un problema* con una foto. "
               "Te lo cambiamos o reembolsamos sin coste."),
        "en": ("damaged-or-faulty-item", "Damaged or faulty item and warranty",
               "broken, damaged, faulty, defective, does not work, warranty, arrived broken",
               "If the item arrived broken or stops working, you have a 3-year warranty: send a photo from My orders.",
               "Every product has a **3-year warranty**. If it arrived **broken or damaged**, or stops "
               "working, open a claim in *My orders* > *I have a problem* with a photo. We replace or "
               "refund it at no cost."),
    }),
]  # fmt: skip
