from django.apps import AppConfig


class TreesConfig(AppConfig):
    name = "backend.trees"
    label = "trees"
