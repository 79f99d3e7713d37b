"""What a user's credentials may publish, and a check that it is nothing more."""

from __future__ import annotations

from labkit.settings import NscSettings


def user_publish_permissions(user: str) -> list[str]:
    """The default publish allow list for `user`, from the settings' template."""
    return [template.format(user=user) for template in NscSettings().user_publish]
