"""The demo's configuration (``deploy/data/demo.toml``) and bundled sample region.

:class:`DemoConfig` holds the instruments, prevalence, consent, clinics and
organizations' habits the simulated parties follow.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from schemas.codes import Category, Instrument

DATA: Final = Path(__file__).resolve().parents[1] / "data"
DEMO_CONFIG: Final = DATA / "demo.toml"
SAMPLE_REGION: Final = DATA / "dallas" / "directory.json"


# ---------------------------------------------------------------- configuration
@dataclass(frozen=True)
class ClinicConfig:
    id: str
    name: str
    postal_codes: tuple[str, ...]
    languages: Mapping[str, float]


@dataclass(frozen=True)
class DemoConfig:
    """``demo.toml``: instruments, prevalence, consent, clinics and organizations' habits."""

    instruments: Mapping[Instrument, float]
    prevalence: Mapping[Instrument, Mapping[Category, float]]
    consent: Mapping[str, float]
    ages: Mapping[str, float]
    clinics: tuple[ClinicConfig, ...]
    organizations: Mapping[str, Any]
    silent_by_name: Mapping[str, float]
    not_eligible_by_category: Mapping[Category, float]
    outcome_hours: Mapping[str, tuple[float, float]]
    #: the hospital: ``visits`` (patients it sees) and ``emergency`` (share of ED visits)
    hospital: Mapping[str, float] = field(default_factory=dict)
    #: what those who consent let organizations hear of encounters, and how often
    encounter_alerts: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = DEMO_CONFIG) -> DemoConfig:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        orgs = dict(doc["organizations"])
        silent_by_name = orgs.pop("silent_by_name", {})
        strict = orgs.pop("not_eligible_by_category", {})
        return cls(
            instruments={Instrument(k): float(v) for k, v in doc["instruments"].items()},
            prevalence={
                Instrument(k): {Category(c): float(p) for c, p in v.items()}
                for k, v in doc["prevalence"].items()
            },
            consent={k: float(v) for k, v in doc["consent"].items()},
            ages={k: float(v) for k, v in doc["ages"].items()},
            clinics=tuple(
                ClinicConfig(c["id"], c["name"], tuple(c["postal_codes"]), dict(c["languages"]))
                for c in doc["clinics"]
            ),
            organizations=orgs,
            silent_by_name={str(k): float(v) for k, v in silent_by_name.items()},
            not_eligible_by_category={Category(k): float(v) for k, v in strict.items()},
            outcome_hours={k: (float(v[0]), float(v[1])) for k, v in doc["outcome_hours"].items()},
            hospital={k: float(v) for k, v in doc.get("hospital", {}).items()},
            encounter_alerts={k: float(v) for k, v in doc.get("encounter_alerts", {}).items()},
        )


def pick(rng: random.Random, weights: Mapping[Any, float]) -> Any:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]
