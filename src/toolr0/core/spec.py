"""Task specifications s = (domain, context type, menu size, number of gold calls) and their sampler (spec §3).

The distribution is user data: a YAML file (packaged default: ``toolr0/core/data/default_spec.yaml`` with the
paper's 32 domains). Sampling is deterministic per (seed, index), so a resumed run can regenerate spec i.

``num_calls: 0`` asks for a no-call task (a request none of the menu's tools can serve, gold ``[]``). The paper
has none: the packaged default lists it with weight 0; the packaged ``no_call`` distribution (the default plus
12 % no-call specs, used by the small presets) turns it on. The packaged ``kinds`` distribution sets the
shares of one-call, two-call and no-call tasks the benchmarks ask for (the cpu preset's). Packaged files are chosen
by name (``default``, ``no_call``, ``kinds``), any other value is a path; a file may ``extends:`` another.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from toolr0.core.yamlfile import parse_yaml, read_user_file
from toolr0.errors import ConfigError

DEFAULT_SPEC_FILE = "default_spec.yaml"
# Packaged distributions, chosen by name in `spec_file:` / `--file` (a file path works too).
BUILTIN_SPECS = {
    "default": DEFAULT_SPEC_FILE, "no_call": "no_call_spec.yaml", "kinds": "kinds_spec.yaml",
    "one_call": "one_call_spec.yaml",
}


@dataclass(frozen=True)
class TaskSpec:
    """One Generator prompt's control spec."""

    domain: str
    context_type: str
    menu_size: int
    num_calls: int

    @property
    def no_call(self) -> bool:
        """A no-call task: a request none of the menu's tools can serve, gold ``[]``."""
        return self.num_calls == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskSpec:
        return cls(str(d["domain"]), str(d["context_type"]), int(d["menu_size"]), int(d["num_calls"]))


def _check_weights(weights: dict[Any, float], what: str, single: bool = False) -> dict[Any, float]:
    if not weights:
        raise ValueError(f"{what} is empty")
    for key, w in weights.items():
        if w != w or w < 0 or w == float("inf"):  # NaN, negative, infinite
            subject = "weight" if single else f"weight of {key!r}"
            raise ValueError(f"{subject} must be a finite number >= 0 (got {w})")
    if sum(weights.values()) <= 0:
        raise ValueError("all weights are zero")
    return weights


class RangeBucket(BaseModel):
    """A weighted bucket drawing a uniform integer in [min, max]."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", description="Label only (e.g. small/large).")
    weight: float = Field(..., description="Relative weight of this bucket (>= 0).")
    min: int = Field(..., ge=1, description="Smallest menu size in the bucket.")
    max: int = Field(..., ge=1, description="Largest menu size in the bucket (>= min).")

    @field_validator("weight")
    @classmethod
    def _weight(cls, v: float) -> float:
        _check_weights({"bucket": v}, "bucket", single=True)
        return v

    @model_validator(mode="after")
    def _range(self) -> RangeBucket:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) < min ({self.min})")
        return self


class MenuRule(BaseModel):
    """Menu-size distribution for one number of calls: weighted ``values`` or weighted uniform ``buckets``."""

    model_config = ConfigDict(extra="forbid")

    values: dict[int, float] | None = Field(None, description="Discrete distribution menu_size -> weight.")
    buckets: list[RangeBucket] | None = Field(
        None, description="Weighted buckets, each uniform on [min, max]."
    )

    @field_validator("values")
    @classmethod
    def _values(cls, v: dict[int, float] | None) -> dict[int, float] | None:
        if v is not None:
            _check_weights(v, "values")
            if any(k < 1 for k in v):
                raise ValueError("menu sizes must be >= 1")
        return v

    @field_validator("buckets")
    @classmethod
    def _buckets(cls, v: list[RangeBucket] | None) -> list[RangeBucket] | None:
        if v is not None:
            _check_weights({b.name or i: b.weight for i, b in enumerate(v)}, "buckets")
        return v

    @model_validator(mode="after")
    def _one_of(self) -> MenuRule:
        if (self.values is None) == (self.buckets is None):
            raise ValueError("give exactly one of 'values' or 'buckets'")
        return self

    def as_buckets(self) -> list[RangeBucket]:
        if self.buckets is not None:
            return list(self.buckets)
        return [RangeBucket(name=str(k), weight=w, min=k, max=k) for k, w in (self.values or {}).items()]


class SpecDistribution(BaseModel):
    """The task-spec distribution (spec §3). Weights are relative (normalised when sampling)."""

    model_config = ConfigDict(extra="forbid")

    domains: dict[str, float] = Field(
        ..., description="Domain -> weight (weight 0 keeps a domain listed but unused)."
    )
    context_type: dict[str, float] = Field(
        ..., description="Context type -> weight (single_turn, multi_turn, ...)."
    )
    num_calls: dict[str, dict[int, float]] = Field(
        ..., description="Per context type: number of gold calls -> weight (0: a no-call task, gold [])."
    )
    menu_size: dict[str, MenuRule] = Field(
        ..., description="Per number of calls (an integer key, or 'default'): the menu-size rule."
    )

    @field_validator("domains", "context_type", "num_calls", "menu_size", mode="before")
    @classmethod
    def _str_keys(cls, v: Any) -> Any:
        # YAML reads `1:` as an int key; names and menu-size keys are strings here.
        return {str(k): x for k, x in v.items()} if isinstance(v, dict) else v

    @field_validator("domains", "context_type")
    @classmethod
    def _weights(cls, v: dict[str, float], info: Any) -> dict[str, float]:
        return _check_weights(v, info.field_name)

    @field_validator("num_calls")
    @classmethod
    def _num_calls(cls, v: dict[str, dict[int, float]]) -> dict[str, dict[int, float]]:
        for ctx, dist in v.items():
            try:
                _check_weights(dist, f"num_calls.{ctx}")
            except ValueError as exc:
                raise ValueError(f"{ctx}: {exc}") from None
            if any(k < 0 for k in dist):
                raise ValueError(f"{ctx}: number of calls must be >= 0 (0 = a no-call task)")
        return v

    @field_validator("menu_size")
    @classmethod
    def _menu_keys(cls, v: dict[str, MenuRule]) -> dict[str, MenuRule]:
        for key in v:
            if key != "default" and not str(key).isdigit():
                raise ValueError(f"key {key!r} must be a number of calls or 'default'")
        return v

    @model_validator(mode="after")
    def _coverage(self) -> SpecDistribution:
        for ctx, w in self.context_type.items():
            if w > 0 and ctx not in self.num_calls:
                raise ValueError(f"num_calls: no distribution for context type {ctx!r}")
        for dist in self.num_calls.values():
            for n, w in dist.items():
                if w > 0 and self.menu_rule(n) is None:
                    raise ValueError(f"menu_size: no rule for {n} call(s) and no 'default'")
        return self

    def menu_rule(self, num_calls: int) -> MenuRule | None:
        rule = self.menu_size.get(str(num_calls))
        return rule if rule is not None else self.menu_size.get("default")

    def domain_weights(self) -> dict[str, float]:
        """Domain -> normalised weight (sums to 1)."""
        total = sum(self.domains.values())
        return {d: w / total for d, w in self.domains.items()}

    def describe(self) -> list[tuple[str, str, str]]:
        """(section, key, probability/rule) rows for display."""
        rows: list[tuple[str, str, str]] = []
        for sec in ("domains", "context_type"):
            weights: dict[str, float] = getattr(self, sec)
            total = sum(weights.values())
            rows.extend((sec, k, f"{w / total:.4f}") for k, w in weights.items())
        for ctx, dist in self.num_calls.items():
            total = sum(dist.values())
            rows.extend((f"num_calls[{ctx}]", str(n), f"{w / total:.4f}") for n, w in dist.items())
        for key, rule in self.menu_size.items():
            buckets = rule.as_buckets()
            total = sum(b.weight for b in buckets)
            for b in buckets:
                rng = str(b.min) if b.min == b.max else f"uniform[{b.min}, {b.max}]"
                label = f"{b.name} " if b.name and b.name != str(b.min) else ""
                rows.append((f"menu_size[n={key}]", f"{label}{rng}", f"{b.weight / total:.4f}"))
        return rows


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<top>"


def parse_spec_data(data: Any, source: str) -> SpecDistribution:
    """Validate parsed YAML; the first problem becomes a one-line ConfigError naming the file and field."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: <top>: expected a mapping with domains, context_type, num_calls, menu_size"
        )
    try:
        return SpecDistribution.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key"
        loc = tuple(err.get("loc", ()))
        where = f"{_loc(loc)}: " if loc else ""  # model-level messages already start with the field
        raise ConfigError(f"{source}: {where}{msg}".replace("\n", " ")) from None


def load_spec_file(path: str | Path | None = None) -> SpecDistribution:
    """Load a spec YAML (``None`` → the packaged default; a name of ``BUILTIN_SPECS`` → that packaged file);
    a bad file raises a one-line ConfigError. A file may start from another one with ``extends: <name or path>``
    (a path relative to the file): its own top-level keys replace the base's, the rest is inherited."""
    data, source = _read_spec_data(path, ())
    return parse_spec_data(data, source)


def _read_spec_data(path: str | Path | None, chain: tuple[str, ...]) -> tuple[Any, str]:
    """Parsed YAML of a spec file with its ``extends`` chain resolved (top-level keys override)."""
    if path is None or str(path) in BUILTIN_SPECS:
        source = BUILTIN_SPECS[str(path or "default")]
        text = (resources.files("toolr0.core") / "data" / source).read_text(encoding="utf-8")
    else:
        source = str(Path(path))
        text = read_user_file(path, "spec file")
    if source in chain:
        raise ConfigError(f"{source}: extends: a cycle ({' -> '.join((*chain, source))})")
    data = parse_yaml(text, source)
    if not isinstance(data, dict) or "extends" not in data:
        return data, source
    base = data["extends"]
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(
            f"{source}: extends: expected a packaged name ({', '.join(BUILTIN_SPECS)}) or a path"
        )
    if base not in BUILTIN_SPECS and path is not None and str(path) not in BUILTIN_SPECS:
        base = str(Path(path).parent / base)  # a path is relative to the file that names it
    base_data, _ = _read_spec_data(base, (*chain, source))
    if not isinstance(base_data, dict):
        raise ConfigError(f"{source}: extends: {base} is not a spec mapping")
    own = {k: v for k, v in data.items() if k != "extends"}
    return {**base_data, **own}, source


def _weighted(rng: random.Random, items: list[tuple[Any, float]]) -> Any:
    total = sum(w for _, w in items)
    x = rng.random() * total
    acc = 0.0
    for item, w in items:
        acc += w
        if x < acc and w > 0:
            return item
    return next(item for item, w in reversed(items) if w > 0)


class SpecSampler:
    """Seeded sampler: spec i depends only on (seed, i), so any spec can be regenerated on resume."""

    def __init__(self, dist: SpecDistribution | None = None, seed: int = 0) -> None:
        self.dist = dist if dist is not None else load_spec_file(None)
        self.seed = int(seed)

    def sample_one(self, index: int) -> TaskSpec:
        rng = random.Random(
            f"toolr0-spec:{self.seed}:{int(index)}"
        )  # str seeds hash via sha512: stable across runs
        d = self.dist
        ctx = _weighted(rng, list(d.context_type.items()))
        n = _weighted(rng, list(d.num_calls[ctx].items()))
        rule = d.menu_rule(n)
        assert rule is not None  # guaranteed by validation
        bucket = _weighted(rng, [(b, b.weight) for b in rule.as_buckets()])
        m = rng.randint(bucket.min, bucket.max)
        domain = _weighted(rng, list(d.domains.items()))
        return TaskSpec(domain=domain, context_type=ctx, menu_size=m, num_calls=n)

    def sample(self, n: int, start: int = 0) -> list[TaskSpec]:
        """Specs ``start .. start+n-1``."""
        return [self.sample_one(i) for i in range(start, start + max(0, int(n)))]
