"""The public help center (/help/) and the agent's article suggestions. Server-rendered,
readable without JavaScript; the language is the URL's."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import translation
from django.views.decorators.http import require_GET, require_POST

from knowledge import selectors, services
from knowledge.models import Language
from knowledge.search import articles_search


def _lang(lang: str) -> str:
    if lang not in Language.values:
        raise Http404
    translation.activate(lang)
    return lang


def _context(lang: str, **extra) -> dict:
    return {"lang": lang, "contact": selectors.help_contact(language=lang), **extra}


@require_GET
def help_root(request):
    lang = translation.get_language_from_request(request)[:2]
    return redirect("knowledge:home", lang=lang if lang in Language.values else "en")


@require_GET
def help_home(request, lang):
    lang = _lang(lang)
    categories = selectors.categories_for_help(language=lang)
    return render(request, "knowledge/help/home.html", _context(lang, categories=categories))


@require_GET
def help_search(request, lang):
    lang = _lang(lang)
    query = request.GET.get("q", "").strip()[:300]
    hits = articles_search(query=query, language=lang, limit=10) if query else []
    return render(request, "knowledge/help/search.html", _context(lang, query=query, hits=hits))


@require_GET
def help_category(request, lang, slug):
    lang = _lang(lang)
    category, articles = selectors.category_for_help(language=lang, slug=slug)
    if category is None:
        raise Http404
    return render(
        request, "knowledge/help/category.html", _context(lang, category=category, articles=articles)
    )


@require_GET
def help_article(request, lang, slug):
    lang = _lang(lang)
    article = selectors.article_for_help(language=lang, slug=slug)
    if article is None:
        raise Http404
    services.article_view_record(article=article)
    voted = request.session.get("kb_voted", []) if request.session.session_key else []
    return render(
        request,
        "knowledge/help/article.html",
        _context(
            lang,
            article=article,
            related=selectors.article_related(article=article),
            translations=selectors.article_translations(article=article),
            voted=article.pk in voted or request.GET.get("voted") == "1",
        ),
    )


@require_POST
def help_vote(request, lang, slug):
    lang = _lang(lang)
    article = get_object_or_404(selectors.published_articles(language=lang), slug=slug)
    voted = request.session.get("kb_voted", [])
    # One vote per visitor session: a refresh or a double click is not a second opinion.
    if article.pk not in voted and request.POST.get("helpful") in ("yes", "no"):
        services.article_vote(article=article, helpful=request.POST["helpful"] == "yes")
        request.session["kb_voted"] = [*voted, article.pk][-200:]
    return redirect(article.get_absolute_url() + "?voted=1")


@require_GET
def help_sitemap(request):
    xml = render_to_string(
        "knowledge/help/sitemap.xml", {"articles": selectors.sitemap_articles(), "request": request}
    )
    return HttpResponse(xml, content_type="application/xml")


@login_required
@require_GET
def case_suggestions(request, case_id):
    """Articles for the case's latest customer message, for the reply box (visibility-checked)."""
    from conversations.models import Case, Direction, MessageKind
    from conversations.visibility import case_visible
    from helpdesk.roles import user_is_agent

    if not user_is_agent(request.user):
        raise PermissionDenied
    case = Case.objects.filter(pk=case_id).select_related("thread__customer").first()
    if case is None or not case_visible(user=request.user, case=case):
        raise Http404  # not theirs, or no such case: answered alike
    latest = (
        case.messages.filter(direction=Direction.IN, kind=MessageKind.TEXT)
        .exclude(body="")
        .select_related("channel")
        .order_by("-created_at", "-id")
        .first()
    )
    if latest is None:
        return JsonResponse({"query": "", "results": []})
    from knowledge.bot import language_fallback
    from knowledge.models import BotSession
    from knowledge.text import detect_language

    # The language the bot settled on, else the message's own, else the channel's or customer's.
    fallback = BotSession.objects.filter(case=case).values_list("language", flat=True).first()
    if not fallback:
        fallback = language_fallback(latest.channel, case.thread) if latest.channel_id else "en"
    lang = detect_language(latest.body, fallback=fallback)
    hits = articles_search(query=latest.body, language=lang, limit=3)
    return JsonResponse(
        {
            "query": latest.body[:200],
            "language": lang,
            "results": [
                {"id": h.article.pk, "title": h.article.title, "url": h.article.public_url, "score": h.score}
                for h in hits
            ],
        }
    )
