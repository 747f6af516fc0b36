"""Forms of the volunteer pages. They check shape only; the services decide the rest."""

from __future__ import annotations

from typing import Any

from allauth.account.forms import SignupForm as AllauthSignupForm
from django import forms
from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse_lazy
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from backend.accounts.models import User
from backend.accounts.services import accept_terms
from backend.trees import labels
from frontend import text

SCALE_POINTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def data_language_choices() -> list[tuple[str, str]]:
    return [(code, text.DATA_LANGUAGES.get(code, code)) for code in settings.CHORUS_LANGUAGES]


class ConsentFields(forms.Form):
    accept_terms = forms.BooleanField(
        label=_("I accept the terms of use and the contributor guidelines."),
        help_text=format_lazy(
            '<a href="{}" target="_blank">{}</a>', reverse_lazy("terms"), _("Read the terms")
        ),
        required=True,
    )
    accept_data_use = forms.BooleanField(
        label=_(
            "I agree that what I write, review and rank is published as an open dataset "
            "under the project's licence, without my name."
        ),
        required=True,
    )


class SignupForm(AllauthSignupForm):
    """allauth's sign-up with the consent and the languages a volunteer works in."""

    languages = forms.MultipleChoiceField(
        label=_("Languages you can write and review in"),
        choices=data_language_choices,
        widget=forms.CheckboxSelectMultiple,
        initial=["en"],
    )
    accept_terms = ConsentFields.base_fields["accept_terms"]
    accept_data_use = ConsentFields.base_fields["accept_data_use"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Consent last, right above the button.
        self.order_fields(
            [name for name in self.fields if name not in ("accept_terms", "accept_data_use")]
            + ["accept_terms", "accept_data_use"]
        )

    def save(self, request: HttpRequest) -> User:
        user: User = super().save(request)
        user.languages = list(self.cleaned_data["languages"])
        user.ui_language = getattr(request, "LANGUAGE_CODE", "") or ""
        user.save(update_fields=["languages", "ui_language"])
        return accept_terms(user=user)


class TermsForm(ConsentFields):
    pass


class WriteForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Limits are settings, read when the form is built.
        limit = settings.CHORUS_MAX_TEXT_LENGTH
        self.fields["text"] = forms.CharField(
            label=_("Your message"),
            max_length=limit,
            min_length=settings.CHORUS_MIN_TEXT_LENGTH,
            widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "true", "maxlength": limit}),
        )


class LabelForm(forms.Form):
    """The labels a review task offers: yes/no questions, flags and five-point scales."""

    def __init__(self, task_type: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.groups: dict[str, list[str]] = {"yes_no": [], "flag": [], "scale": []}
        for name in labels.OFFERED[task_type]:
            label = labels.CATALOGUE[name]
            question = text.LABEL_QUESTIONS.get(name, label.question)
            help_text = text.LABEL_HELP.get(name, "")
            field: forms.Field
            if label.kind == labels.LabelKind.YES_NO:
                field = forms.TypedChoiceField(
                    label=question,
                    help_text=help_text,
                    choices=[("1", _("Yes")), ("0", _("No"))],
                    coerce=float,
                    widget=forms.RadioSelect,
                    required=name in labels.MANDATORY,
                )
            elif label.kind == labels.LabelKind.FLAG:
                # An unticked box is an answer (absent), so flags are always given.
                field = forms.BooleanField(label=question, help_text=help_text, required=False)
            else:
                low, high = text.SCALE_ENDS.get(name, ("", ""))
                field = forms.TypedChoiceField(
                    label=question,
                    help_text=help_text,
                    choices=[(str(p), str(i + 1)) for i, p in enumerate(SCALE_POINTS)],
                    coerce=float,
                    empty_value=None,
                    widget=forms.RadioSelect,
                    required=False,
                )
                field.scale_ends = (low, high)  # type: ignore[attr-defined]
            self.fields[name] = field
            self.groups[label.kind.value].append(name)

    def label_values(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for name, value in self.cleaned_data.items():
            if isinstance(value, bool):
                values[name] = 1.0 if value else 0.0
            elif value is not None and value != "":
                values[name] = float(value)
        return values


class SkipForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("Why do you skip?"),
        choices=list(text.SKIP_REASONS.items()),
        error_messages={"required": _("Choose a reason to skip.")},
    )
    note = forms.CharField(label=_("Note (optional)"), max_length=500, required=False)


class ReportForm(forms.Form):
    reason = forms.ChoiceField(label=_("Reason"), choices=list(text.REPORT_REASONS.items()))
    text = forms.CharField(
        label=_("What is wrong? (optional)"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class ProfileForm(forms.Form):
    display_name = forms.CharField(label=_("Display name"), max_length=100, required=False)
    languages = forms.MultipleChoiceField(
        label=_("Languages you can write and review in"),
        choices=data_language_choices,
        widget=forms.CheckboxSelectMultiple,
    )
    ui_language = forms.ChoiceField(
        label=_("Interface language"),
        choices=lambda: [("", _("As my browser")), *settings.LANGUAGES],
        required=False,
    )
    show_on_leaderboard = forms.BooleanField(label=_("Show me on the leaderboards"), required=False)


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=_("Name of the new key"),
        max_length=100,
        help_text=_("What it is for, e.g. “my review bot”."),
    )
