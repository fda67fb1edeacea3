"""Repo images: a repo's workspace after ``setup.sh``, captured once, that new boxes start from.

- :mod:`.builder` builds one image: a box booted in ``build`` mode (clone, ``setup.sh``, no
  ``start.sh``; a failing ``setup.sh`` fails the build), captured with the provider's
  ``snapshot`` and destroyed;
- :mod:`.choice` picks the image a session's new box starts from (boot mode ``repo_image``);
- ``services/images.py`` is the one-replica service that decides when a repo's image is built.

Only providers that keep snapshots (:class:`~openinspect.sandboxes.base.SnapshotCapable`) can
have images; the store is ``store/images.py``.
"""
