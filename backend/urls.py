from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from backend.core import health
from backend.core.api_docs import ApiDocsView
from backend.core.monitoring import metrics_view

urlpatterns = [
    # HealthCheckMiddleware answers these before the rest of the stack; named here so they
    # can be reversed and every URL is in one list.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("backend.api_urls")),
    path("api/auth/", include("rest_framework.urls")),  # log in for the browsable API
    # Prometheus's scrapes: a plain Django view, so not in the API's schema.
    path("metrics", metrics_view, name="metrics"),
    path("", include("frontend.urls")),
]

handler404 = "backend.core.api_errors.not_found"
