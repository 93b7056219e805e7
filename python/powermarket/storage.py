"""Storage units: :class:`Storage`, one battery of a :class:`~powermarket.Scenario`.

Its fields come from the core's table (``_core.STORAGE_FIELDS``), so that the
class, scenario files and the core agree by construction; ``docs/semantics.md``
("Storage units") states every rule.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from powermarket import _core

_FIELDS: list[tuple[str, Any, Any]] = []
for _name, _default, _optional in _core.STORAGE_FIELDS:
    if _default is None and not _optional:
        _FIELDS.append((_name, float))
    else:
        _FIELDS.append((_name, float | None, dataclasses.field(default=_default)))
_FIELDS.append(("name", str | None, dataclasses.field(default=None)))


def _check(self: Any) -> None:
    _core.check_storage(dataclasses.asdict(self))


def _replace(self: Any, **changes: Any) -> Any:
    return dataclasses.replace(self, **changes)


Storage = dataclasses.make_dataclass(
    "Storage",
    _FIELDS,
    frozen=True,
    namespace={
        "__post_init__": _check,
        "replace": _replace,
        "__module__": __name__,
        "__doc__": (
            "A storage unit (battery): ``Storage(power, energy, efficiency_charge=0.95, "
            "efficiency_discharge=0.95, soc_initial=0.5, soc_min=0.0, soc_max=1.0, "
            "cost=0.0, reference_price=None, terminal_value=None, name=None)``.\n\n"
            "``power`` MW (charge and discharge), ``energy`` MWh, efficiencies in (0, 1], "
            "states of charge as shares of ``energy``, ``cost`` €/MWh of throughput, "
            "``reference_price`` €/MWh (None: the mean generator cost) around which its "
            "price action bids, ``terminal_value`` €/MWh of energy left at the end (None: "
            "the reference price). Invalid values raise ValueError naming the field."
        ),
    },
)

__all__ = ["Storage"]
