"""Static files: hashed names and compression (WhiteNoise) for caching far into the future."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    # A file missing from the manifest (no collectstatic yet, as in tests) keeps its plain name
    # instead of failing the whole page.
    manifest_strict = False
