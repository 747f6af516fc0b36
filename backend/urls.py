from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from backend.core.api_docs import ApiDocsView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("backend.api_urls")),
    path("api/auth/", include("rest_framework.urls")),  # log in for the browsable API
    path("", include("frontend.urls")),
]

handler404 = "backend.core.api_errors.not_found"
