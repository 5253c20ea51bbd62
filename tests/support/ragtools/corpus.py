"""A generated document set with questions whose answer section is known: Markdown volumes
of records, one fact (a year and a person) per section."""

from __future__ import annotations

import random
from pathlib import Path

PLACES = [
    "Varnholm",
    "Quillbay",
    "Ostrava Minor",
    "Tembrook",
    "Kaldera",
    "Pellwick",
    "Sorrento Vale",
    "Marrowdeep",
    "Ashgrove",
    "Lindqvist Point",
    "Brevik",
    "Castellane",
    "Dunmore",
    "Eskerfield",
    "Frostmere",
    "Galloway Reach",
    "Harrowgate",
    "Iverness Hollow",
]
THINGS = [
    "lighthouse",
    "clock tower",
    "stone bridge",
    "observatory",
    "library",
    "harbour crane",
    "windmill",
    "opera house",
    "salt mine",
    "railway station",
    "glasshouse",
    "dam",
    "bell foundry",
    "printing press",
    "ferry",
    "aqueduct",
    "market hall",
    "seed vault",
    "paper mill",
    "tram line",
    "telescope",
    "orchard",
    "canal lock",
]
PEOPLE = [
    "Ilsa Morrow",
    "Tobiah Greave",
    "Ameline Ostrowski",
    "Daku Ferrant",
    "Wren Halloway",
    "Petra Lindahl",
    "Caspian Olu",
    "Mirela Voss",
    "Juno Achterberg",
    "Haldor Quint",
]
COLOURS = ["cobalt blue", "saffron", "moss green", "crimson", "pearl white", "slate grey"]


def generate_corpus(folder: Path, seed: int = 7) -> list[tuple[str, str, str]]:
    """Markdown files, one fact per section; returns (question, source, answer phrase)."""
    rng = random.Random(seed)
    pairs = [(p, t) for p in PLACES for t in THINGS]
    rng.shuffle(pairs)
    questions = []
    for number in range(0, 414, 9):
        lines = [f"# Records of volume {number // 9 + 1}", ""]
        for place, thing in pairs[number : number + 9]:
            person, colour = rng.choice(PEOPLE), rng.choice(COLOURS)
            year = rng.randrange(1700, 1990)
            lines += [
                f"## The {thing} of {place}",
                "",
                f"The {thing} of {place} was built in {year} under the direction of {person}. "
                f"Its outer walls were painted {colour}, and the town council meets there once "
                "a year to review its upkeep.",
                "",
            ]
            if len(questions) < 60 and rng.random() < 0.4:
                questions.append(
                    (
                        f"When was the {thing} in {place} constructed and who led the work?",
                        f"The {thing} of {place}",
                        str(year),
                    )
                )
        (folder / f"volume-{number // 9 + 1:02d}.md").write_text("\n".join(lines))
    return questions
