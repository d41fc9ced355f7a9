"""Writes context_qa.jsonl (next to it): long-context question answering about invented things.

Every case is 8-10 short encyclopedia articles about fictional towns, companies and
species (names built from syllables, facts drawn at random, sentences from templates
written for this project), a question about one article, its answer, and the one or
two sentences that support it. All articles share the same kinds of facts, so every
other article is a distractor with a different year, founder or product.

    python examples/data/make_context_qa.py            # rewrites the file (seed 15)
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "context_qa.jsonl"  # next to this generator

SYLLABLES = "bar cel dun fen gor hal kes lom mar nor ost pell quin ras sol tar ul ven wick yar"
ENDINGS = {
    "town": ["ford", "gate", "mere", "holm", "wick", "stead", "bury", "ton"],
    "company": [" Works", " Instruments", " Foundry", " Mills", " Optics", " Textiles"],
    "river": ["", ""],
}
FIRST = [
    "Maren",
    "Ilse",
    "Tobin",
    "Orla",
    "Caspar",
    "Wenna",
    "Anselm",
    "Petra",
    "Hale",
    "Juno",
    "Ravi",
    "Solveig",
    "Emeric",
    "Nadia",
]
LAST = [
    "Okafor",
    "Lindqvist",
    "Baradel",
    "Quarrie",
    "Fenwick",
    "Tamsin",
    "Voskuil",
    "Harrow",
    "Delacroix",
    "Mbeki",
]
REGIONS = ["the Vell Valley", "the Carrow Uplands", "the Ister lowlands", "the Maelan plain"]
INDUSTRIES = ["glass", "rope", "cheese", "paper", "bells", "barrels", "lace", "slate tiles"]
PRODUCTS = ["sewing machines", "barometers", "bicycle gears", "ship lanterns", "typewriters"]
FESTIVALS = ["the Lantern Fair", "the Salt Parade", "the Kite Week", "the Ember Market"]
LANDMARKS = ["a stone bridge", "a round clock tower", "a covered market", "a tidal mill"]
HABITATS = ["reed beds", "limestone caves", "pine forests", "salt marshes", "high meadows"]
DIETS = ["snails", "beetle larvae", "fallen seeds", "freshwater shrimp", "moss spores"]
COLOURS = ["amber", "slate", "copper", "ivory", "rust", "pale-green"]
ANIMALS = ["vole", "heron", "newt", "moth", "finch", "shrew"]

TOWN_FACTS = {
    "founded": [
        "{name} was founded in {founded} by {founder}.",
        "The first houses of {name} were built in {founded}, when {founder} settled there.",
    ],
    "river": [
        "The river {river} runs through the centre of {name}.",
        "{name} grew up on both banks of the river {river}.",
    ],
    "industry": [
        "For two centuries the town has been known for its {industry}.",
        "Most people in {name} once worked making {industry}.",
    ],
    "population": [
        "About {population} people live in {name} today.",
        "The last census counted {population} residents.",
    ],
    "festival": [
        "Every autumn {name} hosts {festival}, which draws visitors from the whole region.",
        "{festival} has been held in {name} each spring since {festival_year}.",
    ],
    "landmark": [
        "Its best-known building is {landmark} near the old square.",
        "Visitors usually come to see {landmark} on the high street.",
    ],
}
COMPANY_FACTS = {
    "founded": [
        "{name} was founded in {founded} by {founder}.",
        "{founder} started {name} in a rented workshop in {founded}.",
    ],
    "product": [
        "The company is best known for its {product}.",
        "For most of its history {name} has made {product}.",
    ],
    "city": [
        "Its headquarters are in {city}.",
        "{name} is based in the town of {city}.",
    ],
    "employees": [
        "It employs around {employees} people.",
        "The firm had {employees} employees at its largest.",
    ],
    "chief": [
        "Since {chief_year} the company has been led by {chief}.",
        "Its current director is {chief}.",
    ],
}
SPECIES_FACTS = {
    "discovered": [
        "It was first described in {discovered} by the naturalist {founder}.",
        "{founder} recorded the first specimen in {discovered}.",
    ],
    "habitat": [
        "The {name} lives mainly in {habitat}.",
        "It is found almost only in {habitat}.",
    ],
    "diet": [
        "It feeds chiefly on {diet}.",
        "Its diet consists mostly of {diet}.",
    ],
    "size": [
        "Adults reach about {size} centimetres in length.",
        "A grown {name} measures around {size} centimetres.",
    ],
    "lifespan": [
        "In the wild it lives for roughly {lifespan} years.",
        "Few individuals live longer than {lifespan} years.",
    ],
}
FILLER = [
    "The surrounding land is mostly farmland, low woods and a few scattered farms.",
    "Records from the early years are incomplete.",
    "Several local histories describe this period in detail.",
    "A small museum near the station collects letters, tools and photographs from that time.",
    "The name is thought to come from an older word for a crossing.",
    "Travel writers of the last century often mentioned it in their guides to the region.",
]
QUESTIONS = {
    ("town", "founded"): ("In what year was {name} founded?", "{founded}"),
    ("town", "river"): ("Which river runs through {name}?", "The {river}"),
    ("town", "industry"): ("What is {name} known for making?", "{industry}"),
    ("town", "festival"): ("Which festival is held in {name}?", "{festival_cap}"),
    ("company", "founded"): ("Who founded {name}?", "{founder}"),
    ("company", "product"): ("What is {name} best known for making?", "{product}"),
    ("company", "city"): ("Where is {name} based?", "In {city}"),
    ("species", "diet"): ("What does the {name} eat?", "{diet}"),
    ("species", "habitat"): ("Where does the {name} live?", "In {habitat}"),
    ("species", "discovered"): ("Who first described the {name}?", "{founder}"),
}
TWO_SENTENCE = {  # questions needing two sentences of the same article
    "town": (
        "Who founded the town where {festival} is held?",
        "{founder}",
        ("festival", "founded"),
    ),
    "company": (
        "Who founded the company that makes {product}?",
        "{founder}",
        ("product", "founded"),
    ),
}


def word(rng: random.Random, used: set[str], ending: str = "") -> str:
    while True:
        text = "".join(rng.sample(SYLLABLES.split(), 2)).capitalize() + ending
        if text not in used:
            used.add(text)
            return text


def entity(rng: random.Random, kind: str, used: set[str]) -> dict[str, str]:
    person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    facts = {
        "founder": person,
        "founded": str(rng.randint(1620, 1960)),
        "river": word(rng, used),
        "industry": rng.choice(INDUSTRIES),
        "population": f"{rng.randint(2, 90)},{rng.randint(100, 999)}",
        "festival": rng.choice(FESTIVALS),
        "festival_year": str(rng.randint(1800, 1990)),
        "landmark": rng.choice(LANDMARKS),
        "product": rng.choice(PRODUCTS),
        "city": word(rng, used, rng.choice(ENDINGS["town"])),
        "employees": str(rng.randint(40, 3000)),
        "chief": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "chief_year": str(rng.randint(1990, 2023)),
        "habitat": rng.choice(HABITATS),
        "diet": rng.choice(DIETS),
        "size": str(rng.randint(3, 60)),
        "lifespan": str(rng.randint(2, 30)),
        "discovered": str(rng.randint(1750, 1990)),
    }
    if kind == "town":
        facts["name"] = word(rng, used, rng.choice(ENDINGS["town"]))
        facts["intro"] = (
            f"{facts['name']} is a small town in {rng.choice(REGIONS)}, on the old road "
            f"between {word(rng, used, 'ford')} and {word(rng, used, 'ton')}."
        )
    elif kind == "company":
        facts["name"] = word(rng, used, rng.choice(ENDINGS["company"]))
        facts["intro"] = (
            f"{facts['name']} is a family-owned manufacturing company from {rng.choice(REGIONS)}, "
            "with workshops in three towns."
        )
    else:
        facts["name"] = (
            f"{rng.choice(COLOURS)}-backed {word(rng, used).lower()} {rng.choice(ANIMALS)}"
        )
        facts["intro"] = (
            f"The {facts['name']} is a small, shy animal of {rng.choice(REGIONS)} that is rarely "
            "seen by day."
        )
    facts["festival_cap"] = facts["festival"][0].upper() + facts["festival"][1:]
    return facts


FACTS_PER_ARTICLE = 5


def article(rng: random.Random, kind: str, facts: dict[str, str]) -> tuple[list[list[str]], dict]:
    """Two paragraphs of sentences, and which sentence states which fact."""
    table = {"town": TOWN_FACTS, "company": COMPANY_FACTS, "species": SPECIES_FACTS}[kind]
    chosen = rng.sample(list(table), FACTS_PER_ARTICLE)
    sentences = {key: rng.choice(table[key]).format(**facts) for key in chosen}
    sentences = {k: s[0].upper() + s[1:] for k, s in sentences.items()}
    first = [facts["intro"], sentences[chosen[0]], sentences[chosen[1]]]
    second = [sentences[k] for k in chosen[2:]]
    second.insert(rng.randrange(len(second) + 1), rng.choice(FILLER))
    return [first, second], sentences


def case(rng: random.Random, index: int) -> dict:
    used: set[str] = set()
    n_docs = rng.randint(8, 10)
    kinds = [rng.choice(["town", "company", "species"]) for _ in range(n_docs)]
    entities = [entity(rng, kind, used) for kind in kinds]
    articles = [article(rng, kind, facts) for kind, facts in zip(kinds, entities, strict=True)]
    answer_doc = rng.randrange(n_docs)
    kind, facts = kinds[answer_doc], entities[answer_doc]
    by_fact = articles[answer_doc][1]
    if kind in TWO_SENTENCE and index % 4 == 3:
        question, answer, keys = TWO_SENTENCE[kind]
        # The festival or product must pick out one article of its kind.
        same_kind = [e for e, k in zip(entities, kinds, strict=True) if k == kind]
        if [e[keys[0]] for e in same_kind].count(facts[keys[0]]) > 1:
            keys = None
        if keys is not None and all(k in by_fact for k in keys):
            support = [by_fact[k] for k in keys]
            return _record(
                index,
                articles,
                question.format(**facts),
                answer.format(**facts),
                support,
                answer_doc,
            )
    options = [key for (k, key) in QUESTIONS if k == kind and key in by_fact]
    key = rng.choice(options)
    question, answer = QUESTIONS[(kind, key)]
    return _record(
        index,
        articles,
        question.format(**facts),
        answer.format(**facts),
        [by_fact[key]],
        answer_doc,
    )


def _record(index, articles, question, answer, support, answer_doc) -> dict:
    documents = ["\n\n".join(" ".join(p) for p in paragraphs) for paragraphs, _ in articles]
    for sentence in support:
        assert sentence in documents[answer_doc]
    return {
        "id": f"ctx-{index:02d}",
        "documents": documents,
        "question": question,
        "answer": " " + answer,
        "support": support,
        "support_document": answer_doc,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for i in range(args.n):
            f.write(json.dumps(case(rng, i), ensure_ascii=False) + "\n")
    print(f"{args.n} cases written to {args.out}")


if __name__ == "__main__":
    main()
