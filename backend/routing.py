"""WebSocket routes (Channels)."""

from django.urls import path

from backend.assistant.consumers import ChatConsumer
from backend.moderation.consumers import ModerationFeedConsumer
from backend.tasks.consumers import TaskCountsConsumer

websocket_urlpatterns = [
    path("ws/moderation/", ModerationFeedConsumer.as_asgi()),
    path("ws/tasks/", TaskCountsConsumer.as_asgi()),
    path("ws/chat/<uuid:chat_id>/", ChatConsumer.as_asgi()),
]
