"""The producer keys of a collector process: the one its components sign with, and the public
keys whose signatures make an event of Driftline's own types believable
(``driftline.agent.provenance``).

The collector trusts every key in DRIFTLINE_TRUSTED_PRODUCER_KEYS, and the public half of
DRIFTLINE_PRODUCER_KEY_FILE when that file exists, so that one machine (``driftline up``,
``demo``) needs no setup: it makes the key on first start and trusts what it signs.
"""

from __future__ import annotations

from driftline.agent.provenance import ProducerKey, TrustedProducers, load_public_key
from driftline.collector.core.settings import CollectorSettings


def producer_key(settings: CollectorSettings, *, create: bool = False) -> ProducerKey:
    """The components' signing key; ProducerKeyError naming the file if it cannot be used."""
    return ProducerKey.load(settings.producer_key_file, create=create)


def trusted_producers(settings: CollectorSettings) -> TrustedProducers:
    """The keys whose signed events the collector stores; ProducerKeyError naming a file that
    cannot be read."""
    keys = [load_public_key(path) for path in settings.trusted_producer_keys]
    if settings.producer_key_file.exists():
        keys.append(producer_key(settings).public_key)
    return TrustedProducers(keys)
