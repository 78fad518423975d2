from django.urls import path, re_path

from knowledge import views

app_name = "knowledge"

LANG = r"(?P<lang>es|en)"

urlpatterns = [
    path("", views.help_root, name="root"),
    path("sitemap.xml", views.help_sitemap, name="sitemap"),
    path("suggestions/case/<int:case_id>/", views.case_suggestions, name="case_suggestions"),
    re_path(rf"^{LANG}/$", views.help_home, name="home"),
    re_path(rf"^{LANG}/search/$", views.help_search, name="search"),
    re_path(rf"^{LANG}/c/(?P<slug>[-\w]+)/$", views.help_category, name="category"),
    re_path(rf"^{LANG}/(?P<slug>[-\w]+)/$", views.help_article, name="article"),
    re_path(rf"^{LANG}/(?P<slug>[-\w]+)/vote/$", views.help_vote, name="vote"),
]
