from django.urls import include, path

from frontend.views import (
    chat,
    community,
    dashboard,
    moderation,
    onboarding,
    pages,
    profile,
    tasks,
    trees,
)

urlpatterns = [
    path("", pages.home, name="home"),
    path("accounts/", include("allauth.urls")),
    path("terms/", pages.terms, name="terms"),
    path("guidelines/", pages.guidelines, name="guidelines"),
    path("tutorial/", onboarding.tutorial, name="tutorial"),
    path("language/", pages.set_language, name="set_language"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("leaderboard/", community.leaderboard, name="leaderboard"),
    path("tasks/start/", tasks.start_task, name="start_task"),
    path("tasks/<uuid:task_id>/", tasks.task_page, name="task"),
    path("tasks/<uuid:task_id>/skip/", tasks.skip_task, name="skip_task"),
    path("preview/", tasks.preview, name="preview"),
    path("trees/", trees.tree_list, name="trees"),
    path("trees/<uuid:tree_id>/", trees.tree_detail, name="tree"),
    path("messages/<uuid:message_id>/react/", trees.react, name="react"),
    path("messages/<uuid:message_id>/report/", trees.report, name="report"),
    path("chat/", chat.chat_list, name="chats"),
    path("chat/<uuid:chat_id>/", chat.chat_page, name="chat"),
    path("chat/<uuid:chat_id>/exclude/", chat.exclude, name="chat_exclude"),
    path("chat/<uuid:chat_id>/delete/", chat.delete, name="chat_delete"),
    path("chat/<uuid:chat_id>/<uuid:message_id>/vote/", chat.vote, name="chat_vote"),
    path("chat/<uuid:chat_id>/<uuid:message_id>/report/", chat.report, name="chat_report"),
    path("chat/<uuid:chat_id>/<uuid:message_id>/propose/", chat.propose, name="chat_propose"),
    path("settings/", profile.profile, name="profile"),
    path("settings/contributions.json", profile.download_contributions, name="contributions"),
    path("settings/delete/", profile.delete_profile, name="delete_account"),
    path("moderation/", moderation.queue, name="moderation_queue"),
    path("moderation/search/", moderation.search, name="moderation_search"),
    path("moderation/audit/", moderation.audit, name="moderation_audit"),
    path(
        "moderation/messages/<uuid:message_id>/", moderation.message_page, name="moderation_message"
    ),
    path(
        "moderation/messages/<uuid:message_id>/<str:action>/",
        moderation.message_action,
        name="moderation_message_action",
    ),
    path(
        "moderation/trees/<uuid:tree_id>/<str:action>/",
        moderation.tree_action,
        name="moderation_tree_action",
    ),
    path("moderation/users/<uuid:user_id>/", moderation.user_page, name="moderation_user"),
    path(
        "moderation/users/<uuid:user_id>/<str:action>/",
        moderation.user_action,
        name="moderation_user_action",
    ),
]
