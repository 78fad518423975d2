"""Every sentence the visitor's browser shows, translated on the server.

The frame view calls this after activating the visitor's language and hands the
dict to widget.js as JSON, so the panel's script carries no text of its own and
one `makemessages` run finds all of it.
"""

from django.utils.translation import gettext


def widget_strings() -> dict[str, str]:
    return {
        # Panel chrome (the buttons' labels are in frame.html)
        "case_number": gettext("Your case #%(number)s"),
        "online": gettext("We're online"),
        "offline": gettext("We're away right now"),
        "offline_notice": gettext(
            "We're away right now. Leave us a message and we'll answer as soon as we're back."
        ),
        # Composer
        "placeholder": gettext("Type your message…"),
        "chars_left": gettext("%(count)s characters left"),
        "too_long": gettext("Your message is too long (at most %(max)s characters)."),
        "file_too_large": gettext("That file is too large (at most %(max)s)."),
        "file_type": gettext("That type of file can't be sent here."),
        "uploading": gettext("Uploading %(name)s…"),
        "attachment": gettext("Attachment"),
        "image_alt": gettext("Image: %(name)s"),
        # Message list
        "us": gettext("Support"),
        "seen": gettext("Seen"),
        "sending": gettext("Sending…"),
        "not_sent": gettext("Not sent. Tap to retry."),
        "agent_typing": gettext("Agent is typing…"),
        "empty": gettext("Send us a message: we're here to help."),
        # Pre-chat form
        "prechat_intro": gettext("Before we start, tell us a little about you."),
        "prechat_name": gettext("Name"),
        "prechat_email": gettext("Email"),
        "prechat_phone": gettext("Phone"),
        "prechat_optional": gettext("(optional)"),
        "prechat_start": gettext("Start chat"),
        "prechat_required": gettext("This field is required."),
        "prechat_bad_email": gettext("Enter a valid email address."),
        # Survey
        "survey_prompt": gettext("How would you rate our help?"),
        "survey_score": gettext("Score %(score)s of %(max)s"),
        "survey_thanks": gettext("Thanks for your feedback!"),
        # Errors and connection
        "error_generic": gettext("Something went wrong. Please try again."),
        "error_rate": gettext("You are sending messages too fast. Please wait a moment."),
        "error_network": gettext("We couldn't reach the chat. Check your connection."),
        "error_session": gettext("The chat could not start on this page."),
        "reconnecting": gettext("Connection lost, retrying…"),
    }
