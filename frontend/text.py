"""The words the pages use for the domain's codes, translatable.

The backend's enums carry English descriptions for the API and the admin; volunteers read
these instead, in their own language.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy, pgettext_lazy

TASK_TITLES = {
    "initial_prompt": _("Write a first prompt"),
    "assistant_reply": _("Reply as the assistant"),
    "prompter_reply": _("Reply as the user"),
    "label_initial_prompt": _("Review a first prompt"),
    "label_assistant_reply": _("Review an assistant reply"),
    "label_prompter_reply": _("Review a user reply"),
    "rank_assistant_replies": _("Rank assistant replies"),
    "rank_prompter_replies": _("Rank user replies"),
}

TASK_INSTRUCTIONS = {
    "initial_prompt": _(
        "Start a new conversation: ask or request something a person might want from a "
        "helpful assistant."
    ),
    "assistant_reply": _(
        "Write the reply a helpful, honest and harmless assistant should give to the last message."
    ),
    "prompter_reply": _(
        "Continue the conversation as the user: ask a follow-up, correct the assistant or "
        "go deeper."
    ),
    "label_initial_prompt": _("Read the highlighted prompt and answer the questions about it."),
    "label_assistant_reply": _("Read the highlighted reply and answer the questions about it."),
    "label_prompter_reply": _("Read the highlighted message and answer the questions about it."),
    "rank_assistant_replies": _(
        "Put the replies in order, best first. Judge helpfulness, correctness and tone."
    ),
    "rank_prompter_replies": _(
        "Put the user messages in order, best first: which continues the conversation best?"
    ),
}

# Which guideline section each task type links to.
# The editor's label, per writing task.
WRITE_LABELS = {
    "initial_prompt": _("Your first prompt"),
    "assistant_reply": _("Your reply, as the assistant"),
    "prompter_reply": _("Your reply, as the user"),
}

GUIDELINE_ANCHORS = {
    "initial_prompt": "prompts",
    "assistant_reply": "assistant-replies",
    "prompter_reply": "user-replies",
    "label_initial_prompt": "labels",
    "label_assistant_reply": "labels",
    "label_prompter_reply": "labels",
    "rank_assistant_replies": "rankings",
    "rank_prompter_replies": "rankings",
}

LABEL_QUESTIONS = {
    "spam": _("Is this spam?"),
    "fails_task": _("Does the reply fail to do what was asked?"),
    "lang_mismatch": _("Wrong language"),
    "pii": _("Contains personal data"),
    "not_appropriate": _("Inappropriate for an assistant"),
    "hate_speech": _("Hate speech"),
    "sexual_content": _("Sexual content"),
    "moral_judgement": _("Passes moral judgement"),
    "political_content": _("Expresses political views"),
    "quality": _("Quality"),
    "toxicity": _("Rudeness"),
    "humor": _("Humour"),
    "helpfulness": _("Helpfulness"),
    "creativity": _("Creativity"),
    "violence": _("Violence"),
}

LABEL_HELP = {
    "spam": _(
        "Spam is not a genuine attempt: random characters, advertising, a test, or text that "
        "makes no sense."
    ),
    "fails_task": _("The reply does not answer the question or ignores the instructions."),
    "lang_mismatch": _("The message is not in the language of this task."),
    "pii": _("Names with addresses, phone numbers, email addresses or similar details."),
    "not_appropriate": _("Content a customer-facing assistant should not produce."),
    "hate_speech": _("Attacks people for who they are."),
    "sexual_content": _("Sexually explicit descriptions."),
    "moral_judgement": _("Lectures the reader or judges their morals."),
    "political_content": _("Takes a side on a political question."),
    "quality": _("How well written and useful the message is."),
    "toxicity": _("From polite to rude or hostile."),
    "humor": _("From serious to funny."),
    "helpfulness": _("How much the reply helps the person who asked."),
    "creativity": _("From ordinary to original."),
    "violence": _("From harmless to describing or encouraging violence."),
}

# Ends of the five-point scales.
SCALE_ENDS = {
    "quality": (_("low"), _("high")),
    "toxicity": (_("polite"), _("rude")),
    "humor": (_("serious"), _("funny")),
    "helpfulness": (_("unhelpful"), _("helpful")),
    "creativity": (_("ordinary"), _("creative")),
    "violence": (_("harmless"), _("violent")),
}

SKIP_REASONS = {
    "not_knowledgeable": _("I do not know enough about this topic"),
    "inappropriate": _("The content is inappropriate"),
    "wrong_language": _("It is not in my language"),
    "too_long": _("It would take too long"),
    "other": _("Other"),
}

REPORT_REASONS = {
    "spam": _("Spam"),
    "offensive": _("Offensive or hateful"),
    "personal_data": _("Contains personal data"),
    "wrong_language": _("Wrong language"),
    "incorrect": _("Factually wrong or harmful advice"),
    "other": _("Other"),
}

TREE_STATES = {
    "initial_prompt_review": _("prompt in review"),
    "prompt_lottery_waiting": _("waiting to grow"),
    "growing": _("growing"),
    "ranking": _("being ranked"),
    "ready_for_scoring": _("being scored"),
    "ready_for_export": _("finished"),
    "aborted_low_grade": _("rejected"),
    "halted_by_moderator": _("halted by a moderator"),
    "scoring_failed": _("scoring failed"),
    "backlog_ranking": _("imported, waiting for ranking"),
}

ROLES = {
    "prompter": pgettext_lazy("message role", "User"),
    "assistant": pgettext_lazy("message role", "Assistant"),
}

EMOJI_GLYPHS = {
    "+1": "👍",
    "-1": "👎",
    "red_flag": "🚩",
    "100": "💯",
    "rofl": "🤣",
    "clap": "👏",
    "diamond": "💎",
    "heart_eyes": "😍",
    "disappointed": "😞",
    "poop": "💩",
    "skull": "💀",
}

EMOJI_NAMES = {
    "+1": _("thumbs up"),
    "-1": _("thumbs down"),
    "red_flag": _("red flag"),
    "100": _("hundred points"),
    "rofl": _("rolling on the floor laughing"),
    "clap": _("applause"),
    "diamond": _("diamond"),
    "heart_eyes": _("love it"),
    "disappointed": _("disappointed"),
    "poop": _("rubbish"),
    "skull": _("dead"),
}

# Names of the data languages (CHORUS_LANGUAGES), shown in their own language.
DATA_LANGUAGES = {
    "en": "English",
    "de": "Deutsch",
    "es": "Español",
    "fr": "Français",
    "it": "Italiano",
    "pt": "Português",
    "pt-BR": "Português (Brasil)",
    "ru": "Русский",
    "zh": "中文",
    "ja": "日本語",
    "uk-UA": "Українська",
    "pl": "Polski",
    "nl": "Nederlands",
    "ca": "Català",
    "eu": "Euskara",
}

NO_TASK_REASONS = {
    "prompt_queue_full": _("The queue of new prompts is full; prompts are reviewed first."),
    "nothing_open": _("There is nothing of this kind to do in this language right now."),
    "all_taken": _("All open tasks of this kind are being worked on by others."),
    "already_done_or_own": _(
        "The open tasks of this kind are your own messages or ones you have done already."
    ),
    "contention": _("Other volunteers took the last ones; try again."),
}

ERROR_MESSAGES = {
    "task_expired": _("The time for this task ran out; here is the dashboard for a new one."),
    "task_already_done": _("This task was submitted already."),
    "tree_moved_on": _("The conversation moved on while you worked; please take a new task."),
    "tree_halted": _("A moderator halted this conversation; please take a new task."),
    "user_banned": _("This account is banned from contributing."),
    "not_found": _("That does not exist, or you may not see it."),
    "not_your_task": _("That does not exist, or you may not see it."),
    "no_task_available": _("There is no task of this kind for you right now."),
    "inference_off": _("The assistant is switched off on this site."),
    "inference_unavailable": _(
        "The assistant cannot be reached right now. Your message is saved; try again later."
    ),
    "inference_timeout": _(
        "The assistant is taking too long to answer. Your message is saved; try again."
    ),
    "prompt_queue_full": _(
        "Too many prompts are waiting for review in this language; try again later."
    ),
    "duplicate_prompt": _("A prompt like this one exists already; please write a different one."),
}


# Personal data kinds found by auto-moderation (backend/moderation/pii.py).
PII_KINDS = {
    "email": _("email address"),
    "phone": _("phone number"),
    "street_address": _("street address"),
    "iban": _("IBAN"),
    "credit_card": _("credit card number"),
    "ip_address": _("IP address"),
}

# What auto-moderation says in the reports it files; the counts are formatted with
# `% {"count": n}` and pick their plural form from n.
AUTO_REPORT = {
    "pii": _("found personal data ({kinds}); the message stays until a moderator decides"),
    "auto_hide": ngettext_lazy(
        "hidden automatically after %(count)s volunteer objected; restore it if that was wrong",
        "hidden automatically after %(count)s volunteers objected; restore it if that was wrong",
        "count",
    ),
    "auto_halt": ngettext_lazy(
        "its tree was halted automatically after %(count)s volunteer objected; "
        "resume it if that was wrong",
        "its tree was halted automatically after %(count)s volunteers objected; "
        "resume it if that was wrong",
        "count",
    ),
    "auto_flag": ngettext_lazy(
        "%(count)s volunteer objected; nothing was changed",
        "%(count)s volunteers objected; nothing was changed",
        "count",
    ),
}
