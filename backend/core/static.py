"""Static files: hashed names and compression (WhiteNoise) for caching far into the future."""

from __future__ import annotations

from django.core.files.storage import FileSystemStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    manifest_strict = False

    def url(self, name: str | None, force: bool = False) -> str:
        try:
            return super().url(name, force)
        except ValueError:
            # Not collected yet (tests, a checkout before collectstatic): the plain URL,
            # which the staticfiles finders can still serve.
            return FileSystemStorage.url(self, name)
