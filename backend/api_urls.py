"""The REST API, /api/v1."""

from django.urls import path

from backend.accounts import api as accounts
from backend.moderation import api as moderation
from backend.tasks import api as tasks
from backend.trees import api as trees

urlpatterns = [
    path("me/", accounts.MeView.as_view(), name="me"),
    path("me/stats/", accounts.MyStatsView.as_view(), name="my-stats"),
    path("tasks/", tasks.TaskListView.as_view(), name="tasks"),
    path("tasks/availability/", tasks.AvailabilityView.as_view(), name="task-availability"),
    path("tasks/<uuid:task_id>/", tasks.TaskDetailView.as_view(), name="task"),
    path("tasks/<uuid:task_id>/submit/", tasks.SubmitView.as_view(), name="task-submit"),
    path("tasks/<uuid:task_id>/skip/", tasks.SkipView.as_view(), name="task-skip"),
    path("trees/", trees.TreeListView.as_view(), name="trees"),
    path("trees/<uuid:tree_id>/", trees.TreeDetailView.as_view(), name="tree"),
    path("trees/<uuid:tree_id>/halt/", trees.TreeHaltView.as_view(), name="tree-halt"),
    path("trees/<uuid:tree_id>/resume/", trees.TreeResumeView.as_view(), name="tree-resume"),
    path("messages/<uuid:message_id>/", trees.MessageDetailView.as_view(), name="message"),
    path(
        "messages/<uuid:message_id>/conversation/",
        trees.ConversationView.as_view(),
        name="message-conversation",
    ),
    path(
        "messages/<uuid:message_id>/reactions/",
        trees.ReactionsView.as_view(),
        name="message-reactions",
    ),
    path(
        "messages/<uuid:message_id>/reactions/<str:emoji>/",
        trees.ReactionDeleteView.as_view(),
        name="message-reaction",
    ),
    path(
        "messages/<uuid:message_id>/reports/",
        moderation.ReportView.as_view(),
        name="message-report",
    ),
]
