from channels_adapters.models import Channel


def channel_get_active(*, key: str) -> Channel | None:
    return Channel.objects.filter(key=key, is_active=True).first()
