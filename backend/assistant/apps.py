from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "backend.assistant"
    label = "assistant"
