"""The OpenAPI document and its Swagger UI: public, complete, valid, served without a CDN."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS
from rest_framework.test import APIClient

from backend import api_urls

pytestmark = pytest.mark.django_db

SCHEMA = "/api/schema/"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")

# The error responses each task endpoint must declare (401 and 429 are on every endpoint).
TASK_ERRORS = {
    ("/api/v1/tasks/", "post"): {400, 401, 403, 404, 429},
    ("/api/v1/tasks/availability/", "get"): {400, 401, 429},
    ("/api/v1/tasks/{task_id}/", "get"): {401, 403, 404, 429},
    ("/api/v1/tasks/{task_id}/submit/", "post"): {400, 401, 403, 404, 409, 429},
    ("/api/v1/tasks/{task_id}/skip/", "post"): {400, 401, 403, 404, 409, 429},
}


def openapi_path(route: str) -> str:
    """'tasks/<uuid:task_id>/' -> '/api/v1/tasks/{task_id}/'."""
    return "/api/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def api_routes() -> dict[str, set[str]]:
    """Every path in backend/api_urls.py with the HTTP methods its view answers."""
    routes = {}
    for pattern in api_urls.urlpatterns:
        view = pattern.callback.view_class
        methods = {m for m in HTTP_METHODS if hasattr(view, m)}
        routes[openapi_path(str(pattern.pattern))] = methods
    return routes


@pytest.fixture
def schema() -> dict:
    response = APIClient().get(SCHEMA, HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content[:500]
    return response.json()


def test_the_schema_is_public_so_the_docs_work_before_signing_in():
    response = APIClient().get(SCHEMA)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert response.content.startswith(b"openapi: 3.")


def test_the_schema_is_also_served_to_an_authenticated_client(volunteer):
    response = volunteer().client.get(SCHEMA, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


def test_the_schema_is_an_openapi_3_document(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Chorus API"
    assert schema["paths"]


def test_the_schema_lists_every_path_and_method_of_the_api(schema):
    routes = api_routes()
    assert len(routes) == len(api_urls.urlpatterns)
    for path, methods in routes.items():
        assert path in schema["paths"], f"{path} is missing from the schema"
        assert methods <= set(schema["paths"][path]), (path, methods, set(schema["paths"][path]))


def test_the_schema_has_no_path_outside_the_api(schema):
    assert set(schema["paths"]) == set(api_routes())


def test_every_operation_has_a_unique_named_operation_id(schema):
    ids = [
        operation["operationId"]
        for item in schema["paths"].values()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(("path", "method"), sorted(TASK_ERRORS))
def test_the_task_endpoints_declare_their_error_responses(schema, path, method):
    responses = schema["paths"][path][method]["responses"]
    declared = {int(code) for code in responses if code.startswith(("4", "5"))}
    # 503: any request may lose its database connection (backend.core.api_errors).
    assert declared == TASK_ERRORS[(path, method)] | {503}
    for code in TASK_ERRORS[(path, method)]:
        body = responses[str(code)]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/Error"}
        assert responses[str(code)]["description"]


def test_every_operation_declares_401_429_and_503_with_the_error_body(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            for code in ("401", "429", "503"):
                assert code in operation["responses"], (path, method, code)


def test_the_error_body_is_described_as_code_message_and_fields(schema):
    components = schema["components"]["schemas"]
    error = components["Error"]
    assert error["required"] == ["error"]
    detail_ref = error["properties"]["error"]["$ref"]
    detail = components[detail_ref.rsplit("/", 1)[1]]
    assert set(detail["properties"]) == {"code", "message", "fields"}
    assert set(detail["required"]) == {"code", "message", "fields"}


def test_the_schema_declares_the_api_key_scheme(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiKey"]["type"] == "http"
    assert schemes["apiKey"]["scheme"] == "bearer"
    submit = schema["paths"]["/api/v1/tasks/{task_id}/submit/"]["post"]
    assert {"apiKey": []} in submit["security"]


def test_the_submit_request_documents_key_text_labels_and_ranking(schema):
    body = schema["paths"]["/api/v1/tasks/{task_id}/submit/"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    assert {"key", "text", "labels", "ranking", "not_rankable"} <= set(fields)


def test_spectacular_validates_the_schema_without_warnings():
    GENERATOR_STATS.reset()  # warnings from other tests' schema builds must not count here
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert out.getvalue().startswith("openapi: 3.")


def test_the_docs_page_uses_local_static_files_and_no_cdn():
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert 'id="swagger-ui"' in page
    for cdn in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs", "googleapis", "://"):
        assert cdn not in page, f"the docs page loads {cdn!r} from outside"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    # The start-up script is served by the docs view itself (the page has no inline script).
    assert "/api/docs/?script=" in assets
    for asset in assets:
        if asset == "/api/docs/?script=":
            continue
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not a static file"


def test_the_docs_page_points_at_the_local_schema():
    script = APIClient().get("/api/docs/?script=").content.decode()
    assert '"/api/schema/"' in script
