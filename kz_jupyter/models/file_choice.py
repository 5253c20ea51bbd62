"""Which files of a repo to download: one GGUF quant (all its shards) or the safetensors set."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from kz_jupyter.models.hub import RemoteFile

# Preferred first: the usual quality/size sweet spot, then better quants, then smaller ones.
QUANT_LADDER = (
    "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "Q4_K_S", "Q5_K_S", "IQ4_XS", "IQ4_NL", "Q4_0",
    "Q4_1", "Q5_0", "Q5_1", "Q3_K_L", "Q3_K_M", "Q3_K_S", "IQ3_M", "IQ3_XS", "Q2_K",
    "IQ2_M", "IQ2_XS", "BF16", "F16", "F32",
)  # fmt: skip
_QUANT_IN_NAME = re.compile(
    r"(?<![A-Za-z0-9])(I?Q[0-9]_[A-Z0-9_]+?|I?Q[0-9]_[0-9K]|BF16|F16|F32)"
    r"(?=[-.]|$)",
    re.IGNORECASE,
)
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
_NOT_A_MODEL = ("mmproj", "imatrix")
SAFETENSORS_COMPANIONS = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "model.safetensors.index.json",
)


class FileSelectionError(LookupError):
    """No files of the repo fit the request; the message lists what there is."""


@dataclass(frozen=True)
class GgufVariant:
    """One GGUF model in a repo: a quant, in one file or several shards."""

    quant: str
    files: tuple[RemoteFile, ...]

    @property
    def size(self) -> int:
        """Bytes to download (all shards)."""
        return sum(f.size for f in self.files)

    @property
    def first_file(self) -> str:
        """The file an engine is pointed at (the first shard)."""
        return self.files[0].path


def quant_of(filename: str) -> str:
    """The quant named in a GGUF file name (e.g. Q4_K_M), upper-cased; '' when none."""
    stem = _SHARD.sub(".gguf", PurePosixPath(filename).name)
    found = _QUANT_IN_NAME.findall(stem)
    return found[-1].upper() if found else ""


def is_model_gguf(path: str) -> bool:
    """True for a GGUF model file (not a vision projector or importance matrix)."""
    name = PurePosixPath(path).name.lower()
    return name.endswith(".gguf") and not any(word in name for word in _NOT_A_MODEL)


def gguf_variants(files: list[RemoteFile]) -> list[GgufVariant]:
    """Group a repo's GGUF files into variants, joining the shards of a split model."""
    groups: dict[str, list[RemoteFile]] = {}
    for remote in files:
        if not is_model_gguf(remote.path):
            continue
        key = _SHARD.sub("", remote.path)
        groups.setdefault(key, []).append(remote)
    variants = [
        GgufVariant(quant=quant_of(parts[0].path), files=tuple(sorted(parts, key=lambda f: f.path)))
        for parts in groups.values()
    ]
    return sorted(variants, key=ladder_rank)


def ladder_rank(variant: GgufVariant) -> tuple[int, int]:
    """Sort key: position in the quant ladder, then size."""
    quant = variant.quant
    rank = QUANT_LADDER.index(quant) if quant in QUANT_LADDER else len(QUANT_LADDER)
    return rank, variant.size


def pick_gguf(
    files: list[RemoteFile], quant: str | None, filename: str | None
) -> list[GgufVariant]:
    """The GGUF variants to consider, best first: the named one, or the whole ladder."""
    variants = gguf_variants(files)
    if filename:
        chosen = [v for v in variants if filename in (f.path for f in v.files)]
        if not chosen:
            names = ", ".join(f.path for f in files if f.path.endswith(".gguf"))[:300]
            raise FileSelectionError(f"No GGUF file '{filename}' in the repo. GGUF files: {names}.")
        return chosen
    if quant:
        chosen = [v for v in variants if v.quant == quant.upper()]
        if not chosen:
            quants = ", ".join(sorted({v.quant or "?" for v in variants})) or "none"
            raise FileSelectionError(f"No {quant.upper()} GGUF in the repo. Quants: {quants}.")
        return chosen
    return variants


def safetensors_files(files: list[RemoteFile]) -> list[RemoteFile]:
    """The safetensors weights with config and tokenizer files, or [] when the repo has none."""
    weights = [f for f in files if f.path.endswith(".safetensors") and "/" not in f.path.strip("/")]
    if not weights or not any(f.path == "config.json" for f in files):
        return []
    companions = [f for f in files if f.path in SAFETENSORS_COMPANIONS]
    return sorted(companions + weights, key=lambda f: f.path)
