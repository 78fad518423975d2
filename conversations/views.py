"""The agent inbox: thin views over selectors (reads) and services (writes).

Pages are server-rendered; the small script in static/inbox/ asks the same
views for fragments (`?partial=...`) when the WebSocket says something changed,
so there is one way to render a row or a message.
"""

from datetime import UTC, timedelta
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from channels_adapters.base import OutboundRefused
from channels_adapters.models import Channel
from channels_adapters.registry import UnsupportedChannel, adapter_for
from conversations import cases, delivery, selectors, services
from conversations.calls import call_log
from conversations.forms import (
    AssignForm,
    CallLogForm,
    InboxFilterForm,
    LabelsForm,
    MergeForm,
    PriorityForm,
    ReplyForm,
    StatusForm,
)
from conversations.models import NOT_A_REPLY_SOURCE, CaseStatus, Direction, Label, Message, Priority, Team
from conversations.reply_files import (
    attachments_discard,
    reply_file_types,
    reply_files_check,
    reply_files_save,
    reply_max_bytes,
)
from conversations.visibility import customers_visible_to
from customers import selectors as customer_selectors
from customers.services import merge_customers
from helpdesk.roles import user_is_agent


def agent_required(view):
    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not user_is_agent(request.user):
            raise PermissionDenied(_("The inbox is for agents, supervisors and admins."))
        return view(request, *args, **kwargs)

    return wrapper


def _wants_json(request) -> bool:
    return request.headers.get("X-Requested-With") == "fetch" or "application/json" in request.headers.get(
        "Accept", ""
    )


def _answer(request, case, *, error: str = "", **extra):
    """Script callers get JSON; a plain form post goes back to the case page."""
    if _wants_json(request):
        return JsonResponse({"ok": not error, "error": error, **extra}, status=400 if error else 200)
    if error:
        from django.contrib import messages

        messages.error(request, error)
    return redirect("inbox:case", pk=case.pk)


def _errors(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def _case_or_404(request, pk):
    case = selectors.case_for_agent(user=request.user, pk=pk)
    if case is None:
        raise Http404("No such case, or it belongs to a team you are not in.")
    return case


# Inbox list -----------------------------------------------------------------------


@require_GET
@agent_required
def inbox(request):
    if request.GET.get("partial") == "counts":
        return JsonResponse(selectors.inbox_counts(user=request.user))
    form = InboxFilterForm(request.GET)
    filters = form.filters()
    searched_from = filters.view
    if filters.q:
        # Search covers every case the agent may see, whichever view they were on.
        filters.view = "all"
    page = selectors.inbox_page(user=request.user, filters=filters)
    params = request.GET.copy()
    params.pop("after", None)
    params.pop("partial", None)
    context = {"page": page, "filters": filters, "query": params.urlencode()}
    if request.GET.get("partial") == "rows":
        return render(request, "inbox/_rows.html", context)
    counts = selectors.inbox_counts(user=request.user)
    context.update(
        views=[
            (key, label, counts["views"].get(key)) for key, (label, *_rest) in selectors.INBOX_VIEWS.items()
        ],
        counts=counts,
        searched_from=searched_from if searched_from != "all" else "open",
        channels=Channel.objects.order_by("name"),
        teams=Team.objects.order_by("name"),
        labels=Label.objects.order_by("name"),
        agents=selectors.agents_list(),
        priorities=Priority.choices,
        mentions_unread=selectors.mentions_unread_count(user=request.user),
    )
    return render(request, "inbox/list.html", context)


# Thread view ----------------------------------------------------------------------


def _reply_options(case, identities, messages, channels):
    """Channels the customer can be answered on (of `channels`, the active ones by
    name), with the channel's rule (24-hour window) checked now so the agent sees it
    before typing."""
    thread = case.thread
    default_id = next(
        (
            m.channel_id
            for m in reversed(messages)
            if m.direction == Direction.IN and m.channel_id and m.kind not in NOT_A_REPLY_SOURCE
        ),
        None,
    )
    default_id = default_id or case.origin_channel_id
    options = []
    for channel in channels:
        if channel.kind == "voice":
            continue  # a phone line carries calls, never a written reply
        try:
            adapter = adapter_for(channel.kind)
        except UnsupportedChannel:
            continue
        reachable = [i for i in identities if adapter.reaches(channel, i)]
        recipient = next(
            (
                _latest_identity(reachable, k)
                for k in adapter.identity_kinds
                if any(i.kind == k for i in reachable)
            ),
            None,
        )
        if recipient is None:
            continue
        rule = ""
        try:
            adapter.check_outbound(channel, thread=thread, recipient=recipient, meta={})
        except OutboundRefused as exc:
            rule = str(exc)
        option = {
            "channel": channel,
            "recipient": recipient,
            "rule": rule,
            "templates": channel.kind in ("whatsapp", "whatsapp_twilio"),
            "default": channel.pk == default_id,
            "present": adapter.recipient_present(channel, recipient),
        }
        if option["present"] is False and not rule:
            option["rule"] = _("The visitor has left the website: they will read this when they come back.")
        options.append(option)
    default = next((o for o in options if o["default"]), None)
    if default is not None and default["present"] is False:
        # The customer left the chat: answer where they are (the email they gave).
        fallback = services.reply_fallback(channel=default["channel"], recipient=default["recipient"])
        target = next((o for o in options if fallback and o["channel"].pk == fallback[0].pk), None)
        if target is not None:
            default["default"], target["default"] = False, True
    if options and not any(o["default"] for o in options):
        options[0]["default"] = True
    return options


def _channel_details(messages):
    """The sidebar box of the channel the customer last wrote on, where it has one
    (a website visitor's page, browser and time zone)."""
    latest = next(
        (m for m in reversed(messages) if m.direction == Direction.IN and m.channel and m.identity), None
    )
    if latest is None:
        return None
    try:
        adapter = adapter_for(latest.channel.kind)
    except UnsupportedChannel:
        return None
    return adapter.customer_details(latest.channel, identity=latest.identity, meta=latest.meta or {})


def _latest_identity(identities, kind):
    """The customer's newest address of this kind (the visitor's current chat session)."""
    return max((i for i in identities if i.kind == kind), key=lambda i: (i.created_at, i.pk))


def _csat_answers(customer):
    """Survey answers (CSAT, NPS, CES) when the KPI app stores them; the sidebar works without."""
    from django.apps import apps

    try:
        answers = apps.get_model("kpis", "SurveyAnswer")
    except LookupError:
        return []
    return list(
        answers.objects.filter(customer=customer)
        .order_by("-answered_at")
        .values("kind", "score", "case_id", "answered_at")[:10]
    )


def _thread_context(request, case):
    thread = case.thread
    customer = thread.customer
    before = request.GET.get("before", "")
    identities = list(customer.identities.order_by("kind", "address"))
    agents = selectors.agents_list()
    # Read once for the timeline, the reply box and the outreach box (three reads before).
    channels = list(Channel.objects.defer("credentials").order_by("name"))
    active_channels = [c for c in channels if c.is_active]
    messages = selectors.timeline(
        thread=thread,
        user=request.user,
        before=int(before) if before.isdigit() else None,
        loaded=[*channels, *agents, *identities],
    )
    earlier = len(messages) > selectors.TIMELINE_LIMIT
    messages = messages[-selectors.TIMELINE_LIMIT :]
    canned = [
        {
            "shortcut": c.shortcut,
            "title": c.title,
            "text": cases.canned_response_render(canned=c, customer=customer, agent=request.user),
        }
        for c in selectors.canned_responses_for(user=request.user)
    ]
    reply_options = _reply_options(case, identities, messages, active_channels)
    for option in reply_options:
        option["files"], option["file_types"] = reply_file_types(option["channel"])
    return {
        **_sidebar_context(request, case, identities=identities),
        "thread": thread,
        "timeline": messages,
        "earlier": messages[0].pk if earlier and messages else None,
        "reply_options": reply_options,
        "active_channels": active_channels,
        "reply_max_bytes": reply_max_bytes(),
        "channel_details": _channel_details(messages),
        "canned": canned,
        "agents": agents,
        "mention_names": format_html_join(
            ", ", "<code>@{}</code>", ((a.get_username(),) for a in agents if a.pk != request.user.pk)
        ),
        "teams": Team.objects.order_by("name"),
        "labels": Label.objects.order_by("name"),
        "case_label_ids": {label.pk for label in case.labels.all()},
        "statuses": CaseStatus.choices,
        "priorities": Priority.choices,
        "reply_form": ReplyForm(),
        # No counts: the tab title's unread count comes after the page (inbox.js), as it
        # does on every later event; the page itself is the agent's reading, not the queue.
    }


def _sidebar_context(request, case, *, identities=None):
    """What the customer sidebar shows that changes while the case is open (its cases'
    statuses above all): the page and the live `?partial=sidebar` fragment share it."""
    customer = case.thread.customer
    if identities is None:
        identities = list(customer.identities.order_by("kind", "address"))
    return {
        "case": case,
        "customer": customer,
        "identities": identities,
        "cases": selectors.thread_cases(thread=case.thread, user=request.user),
        "csat": _csat_answers(customer),
    }


@require_GET
@agent_required
def case_detail(request, pk):
    case = _case_or_404(request, pk)
    partial = request.GET.get("partial")
    if partial == "timeline":
        return _timeline_fragment(request, case)
    if partial == "panel":
        context = {
            "case": case,
            "agents": selectors.agents_list(),
            "teams": Team.objects.order_by("name"),
            "labels": Label.objects.order_by("name"),
            "case_label_ids": {label.pk for label in case.labels.all()},
            "statuses": CaseStatus.choices,
            "priorities": Priority.choices,
        }
        return render(request, "inbox/_panel.html", context)
    if partial == "sidebar":
        return render(request, "inbox/_sidebar.html", _sidebar_context(request, case))
    context = _thread_context(request, case)
    unread_mentions = selectors.mentions_unread_count(user=request.user)
    # Writes only when something is new: reopening a read case costs no write.
    if case.last_message_at and (case.read_at is None or case.read_at < case.last_message_at):
        cases.case_mark_read(case=case, user=request.user)
    if unread_mentions:
        unread_mentions -= cases.mentions_mark_read(user=request.user, case=case)
    context["mentions_unread"] = unread_mentions
    return render(request, "inbox/case.html", context)


def _timeline_fragment(request, case):
    def _id(name):
        value = request.GET.get(name, "")
        return int(value) if value.isdigit() else None

    messages = selectors.timeline(
        thread=case.thread,
        user=request.user,
        after=_id("after"),
        before=_id("before"),
        message_id=_id("message"),
    )
    context = {"timeline": messages, "case": case, "customer": case.thread.customer}
    return render(request, "inbox/_timeline.html", context)


@require_POST
@agent_required
def case_read(request, pk):
    case = _case_or_404(request, pk)
    cases.case_mark_read(case=case, user=request.user)
    return JsonResponse({"ok": True})


@require_GET
@agent_required
def case_next(request, pk):
    case = _case_or_404(request, pk)
    following = selectors.next_case_after(user=request.user, case=case)
    if following is None:
        return redirect("inbox:list")
    return redirect("inbox:case", pk=following.pk)


# Writes -----------------------------------------------------------------------------


@require_POST
@agent_required
def case_reply(request, pk):
    case = _case_or_404(request, pk)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return _answer(request, case, error=_errors(form))
    body = form.cleaned_data["body"]
    files = request.FILES.getlist("files")
    attachments = []
    try:
        if form.cleaned_data["mode"] == "note":
            if files:
                return _answer(request, case, error=_("Files go with a reply to the customer, not a note."))
            message = cases.case_note_add(case=case, author_user=request.user, body=body)
        else:
            channel = None
            if form.cleaned_data.get("channel"):
                channel = Channel.objects.filter(pk=form.cleaned_data["channel"], is_active=True).first()
                if channel is None:
                    return _answer(request, case, error="That channel is not available.")
            reply_files_check(channel=channel, files=files)
            attachments = reply_files_save(files=files)
            message = services.send_reply(
                case=case,
                author_user=request.user,
                body=body,
                channel=channel,
                attachments=attachments or None,
                meta=form.meta(),
            )
    except ValidationError as exc:
        # The reply was refused: the files stored for it go too, nothing is half-sent.
        attachments_discard(attachments)
        return _answer(request, case, error=" ".join(exc.messages))
    cases.case_mark_read(case=case, user=request.user)
    return _answer(request, case, message=message.pk)


@require_POST
@agent_required
def case_assign(request, pk):
    case = _case_or_404(request, pk)
    form = AssignForm(request.POST, user=request.user)
    if not form.is_valid():
        return _answer(request, case, error=_errors(form))
    assignee = form.cleaned_data["assignee"]
    team = form.cleaned_data.get("team")
    if "assignee" not in request.POST:
        assignee = case.assignee
    try:
        cases.assign_case(case=case, assignee=assignee, team=team, by=request.user)
    except ValidationError as exc:
        return _answer(request, case, error=" ".join(exc.messages))
    return _answer(request, case)


@require_POST
@agent_required
def case_status(request, pk):
    case = _case_or_404(request, pk)
    form = StatusForm(request.POST)
    if not form.is_valid():
        return _answer(request, case, error=_errors(form))
    until = form.cleaned_data.get("snoozed_until")
    offset = request.POST.get("tz_offset", "")
    if until is not None and offset.lstrip("-").isdigit() and abs(int(offset)) <= 14 * 60:
        # The browser's datetime-local is the agent's wall clock (the form read it
        # in the server's zone); the script sends getTimezoneOffset(): minutes from
        # the agent's local time to UTC.
        wall = timezone.make_naive(until) if timezone.is_aware(until) else until
        until = wall.replace(tzinfo=UTC) + timedelta(minutes=int(offset))
    try:
        cases.set_case_status(
            case=case, status=form.cleaned_data["status"], by=request.user, snoozed_until=until
        )
    except ValidationError as exc:
        return _answer(request, case, error=" ".join(exc.messages))
    return _answer(request, case)


@require_POST
@agent_required
def case_priority(request, pk):
    case = _case_or_404(request, pk)
    form = PriorityForm(request.POST)
    if not form.is_valid():
        return _answer(request, case, error=_errors(form))
    cases.case_priority_set(case=case, priority=form.cleaned_data["priority"], by=request.user)
    return _answer(request, case)


@require_POST
@agent_required
def case_call_log(request, pk):
    case = _case_or_404(request, pk)
    form = CallLogForm(request.POST)
    if not form.is_valid():
        return _answer(request, case, error=_errors(form))
    data = form.cleaned_data
    try:
        message = call_log(
            case=case,
            by=request.user,
            direction=data["direction"],
            number=data["number"],
            answered=data["answered"],
            talk_seconds=(data["minutes"] or 0) * 60 if data["answered"] else 0,
            note=data["note"],
        )
    except ValidationError as exc:
        return _answer(request, case, error=" ".join(exc.messages))
    return _answer(request, case, message=message.pk)


@require_POST
@agent_required
def case_labels(request, pk):
    case = _case_or_404(request, pk)
    form = LabelsForm(request.POST)
    if not form.is_valid():
        return _answer(request, case, error=_errors(form))
    cases.case_labels_set(case=case, labels=form.cleaned_data["labels"], by=request.user)
    return _answer(request, case)


@require_POST
@agent_required
def message_retry(request, pk):
    message = get_object_or_404(Message.objects.select_related("case"), pk=pk)
    if message.case_id is None:
        return HttpResponseBadRequest("This message belongs to no case.")
    case = _case_or_404(request, message.case_id)
    try:
        delivery.message_retry(
            message=message, by=request.user, confirmed=request.POST.get("confirmed") == "yes"
        )
    except ValidationError as exc:
        return _answer(request, case, error=" ".join(exc.messages))
    return _answer(request, case, message=message.pk)


# Customer merge -----------------------------------------------------------------------


@require_GET
@agent_required
def customer_search(request):
    q = request.GET.get("q", "").strip()
    exclude = request.GET.get("exclude", "")
    found = customer_selectors.customer_search(user=request.user, q=q, limit=10)
    results = [
        {
            "id": c.pk,
            "name": str(c),
            "identities": [f"{i.kind}: {i.address}" for i in c.identities.all()],
        }
        for c in found
        if str(c.pk) != exclude
    ]
    return JsonResponse({"results": results})


@agent_required
def case_merge(request, pk):
    """Merge another customer into this case's customer: preview (GET), confirm (POST)."""
    case = _case_or_404(request, pk)
    form = MergeForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        return _answer(request, case, error="Choose the customer to merge.")
    survivor = case.thread.customer
    # A customer the agent may not see is answered as one that does not exist.
    other = get_object_or_404(customers_visible_to(user=request.user), pk=form.cleaned_data["other"])
    if request.method == "GET":
        preview = customer_selectors.customer_merge_preview(survivor=survivor, merged=other)
        return render(request, "inbox/_merge_preview.html", {"case": case, "preview": preview})
    if request.method != "POST":
        return HttpResponseBadRequest()
    try:
        merge_customers(survivor=survivor, merged=other, merged_by=request.user)
    except ValidationError as exc:
        return _answer(request, case, error=" ".join(exc.messages))
    return _answer(request, case, redirect=reverse("inbox:case", args=[case.pk]))


# Mentions -----------------------------------------------------------------------------


@require_GET
@agent_required
def mentions(request):
    items = selectors.mentions_for(user=request.user)
    cases.mentions_mark_read(user=request.user)
    return render(request, "inbox/mentions.html", {"mentions": items, "mentions_unread": 0})
