"""The REST API, /api/v1."""

from django.urls import path

from backend.accounts import api as accounts
from backend.assistant import api as assistant
from backend.community import api as community
from backend.exports import api as exports
from backend.moderation import api as moderation
from backend.tasks import api as tasks
from backend.trees import api as trees

urlpatterns = [
    path("me/", accounts.MeView.as_view(), name="me"),
    path("me/stats/", accounts.MyStatsView.as_view(), name="my-stats"),
    path("me/keys/", accounts.ApiKeyListView.as_view(), name="api-keys"),
    path("me/keys/<uuid:key_id>/", accounts.ApiKeyDetailView.as_view(), name="api-key"),
    path("leaderboard/", community.LeaderboardView.as_view(), name="leaderboard"),
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
    # Moderators
    path(
        "messages/<uuid:message_id>/reports/resolve/",
        moderation.ResolveReportsView.as_view(),
        name="message-reports-resolve",
    ),
    path(
        "messages/<uuid:message_id>/edit/",
        moderation.MessageEditView.as_view(),
        name="message-edit",
    ),
    path(
        "messages/<uuid:message_id>/delete/",
        moderation.MessageDeleteView.as_view(),
        name="message-delete",
    ),
    path(
        "messages/<uuid:message_id>/undelete/",
        moderation.MessageUndeleteView.as_view(),
        name="message-undelete",
    ),
    path(
        "trees/<uuid:tree_id>/settings/",
        moderation.TreeSettingsView.as_view(),
        name="tree-settings",
    ),
    path("users/<uuid:user_id>/ban/", moderation.UserBanView.as_view(), name="user-ban"),
    path("users/<uuid:user_id>/unban/", moderation.UserUnbanView.as_view(), name="user-unban"),
    path("users/<uuid:user_id>/purge/", moderation.UserPurgeView.as_view(), name="user-purge"),
    path("moderation/reports/", moderation.ReportQueueView.as_view(), name="report-queue"),
    path("moderation/messages/", moderation.MessageSearchView.as_view(), name="message-search"),
    path("moderation/audit/", moderation.AuditLogView.as_view(), name="audit-log"),
    path("moderation/trollboard/", moderation.TrollboardView.as_view(), name="trollboard"),
    path("moderation/quality/", moderation.QualityView.as_view(), name="quality-figures"),
    path("moderation/statistics/", moderation.StatisticsView.as_view(), name="statistics"),
    path("moderation/exports/", exports.ExportListView.as_view(), name="exports"),
    path(
        "moderation/exports/<uuid:export_id>/",
        exports.ExportDetailView.as_view(),
        name="export",
    ),
    path(
        "moderation/exports/<uuid:export_id>/download/",
        exports.ExportDownloadView.as_view(),
        name="export-download",
    ),
    path(
        "moderation/chat-reports/",
        assistant.ChatReportQueueView.as_view(),
        name="chat-report-queue",
    ),
    path(
        "moderation/chat-reports/<uuid:report_id>/resolve/",
        assistant.ChatReportResolveView.as_view(),
        name="chat-report-resolve",
    ),
    # The assistant: chats, for their owner only
    path("chats/", assistant.ChatListView.as_view(), name="chats"),
    path("chats/<uuid:chat_id>/", assistant.ChatDetailView.as_view(), name="chat"),
    path(
        "chats/<uuid:chat_id>/messages/",
        assistant.ChatMessagesView.as_view(),
        name="chat-messages",
    ),
    path(
        "chats/<uuid:chat_id>/messages/<uuid:message_id>/vote/",
        assistant.ChatVoteView.as_view(),
        name="chat-message-vote",
    ),
    path(
        "chats/<uuid:chat_id>/messages/<uuid:message_id>/report/",
        assistant.ChatReportView.as_view(),
        name="chat-message-report",
    ),
    path(
        "chats/<uuid:chat_id>/messages/<uuid:message_id>/propose/",
        assistant.ChatProposeView.as_view(),
        name="chat-message-propose",
    ),
]
