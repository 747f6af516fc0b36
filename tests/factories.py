"""factory_boy factories for the domain models."""

from __future__ import annotations

import factory
from django.utils import timezone

from backend.accounts.models import Role, User
from backend.trees.models import Message, MessageTree
from backend.trees.rules import State


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"volunteer{n}")
    display_name = factory.LazyAttribute(lambda u: u.username.title())
    languages = factory.LazyFunction(lambda: ["en"])
    role = Role.VOLUNTEER
    accepted_terms_version = 1
    password = factory.django.Password("correct horse battery staple")


class TreeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageTree

    state = State.GROWING
    lang = "en"


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    tree = factory.SubFactory(TreeFactory)
    parent = None
    role = "prompter"
    text = factory.Sequence(lambda n: f"Message number {n}: how do plants make food?")
    lang = "en"
    author = factory.SubFactory(UserFactory)
    depth = factory.LazyAttribute(lambda m: 0 if m.parent is None else m.parent.depth + 1)
    created_at = factory.LazyFunction(timezone.now)
