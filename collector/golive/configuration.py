"""What the go-live gate reads beside the store, named by the settings: the alerting file (the
owner and escalation path), the accountability map and the data contracts. Loaded once, by the
command and the demo alike; a mistake in any raises its file's ConfigFileError."""

from __future__ import annotations

from dataclasses import dataclass

from driftline.collector.alerting.config import AlertingConfig, load_alerting
from driftline.collector.core.settings import CollectorSettings
from driftline.collector.golive.accountability import AccountabilityMap, load_accountability
from driftline.collector.golive.contracts import Contracts, ModelContract, load_contracts


@dataclass(frozen=True)
class GateConfiguration:
    alerting: AlertingConfig | None
    accountability: AccountabilityMap | None  # None: none configured, a failed criterion
    contracts: Contracts | None

    def contract_of(self, model: str) -> ModelContract | None:
        return self.contracts.for_model(model) if self.contracts else None


def gate_configuration(settings: CollectorSettings) -> GateConfiguration:
    return GateConfiguration(
        alerting=load_alerting(settings.alerting_config) if settings.alerting_config else None,
        accountability=(
            load_accountability(settings.accountability_config)
            if settings.accountability_config
            else None
        ),
        contracts=load_contracts(settings.input_contracts) if settings.input_contracts else None,
    )
