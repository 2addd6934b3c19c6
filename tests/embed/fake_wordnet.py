"""A tiny WordNet database in WNDB format, written for tests of the parser and datasets."""

from __future__ import annotations

import zipfile
from pathlib import Path

# (key, lemmas, pointers as (symbol, target key)), in offset order.
NOUNS = [
    ("entity", ["entity"], []),
    ("animal", ["animal", "beast"], [("@", "entity")]),
    ("mammal", ["mammal"], [("@", "animal")]),
    # A first lemma listed second for "dog" in index.noun: this synset is dog.n.02.
    ("dog_animal", ["dog", "domestic_dog"], [("@", "mammal"), ("~", "entity")]),
    ("cat", ["cat"], [("@", "mammal")]),
    ("tusker", ["tusker"], [("@", "mammal")]),
    ("monster", ["mythical_monster", "monster"], [("@", "entity")]),
    ("fury", ["Fury", "Eumenides"], [("@i", "monster")]),
    ("alecto", ["Alecto"], [("@", "fury")]),
    ("frank", ["dog", "frank", "hotdog"], [("@", "entity")]),  # dog.n.01
    ("orphan", ["orphan_thing"], []),
]
INDEX_ORDER = {"dog": ["frank", "dog_animal"]}
VERBS = [
    ("breathe", ["breathe", "respire"], []),
    ("respire", ["respire"], [("@", "breathe"), ("+", "entity:n")]),
    ("pant", ["pant"], [("@", "respire")]),
    ("zap", ["zap"], []),
]


def _header(version: str) -> str:
    lines = [
        "This is a tiny WordNet-format database for tests.",
        "",
        f"WordNet {version} Copyright 2006 by Princeton University.  All rights reserved.",
    ]
    return "".join(f"  {i} {line}  \n" for i, line in enumerate(lines, start=1))


def write_fake_wordnet(folder: Path, version: str = "3.0") -> Path:
    """Write data/index files for nouns and verbs into ``folder`` and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    noun_offsets = _layout(NOUNS, "n", version)
    verb_offsets = _layout(VERBS, "v", version)
    for suffix, pos, synsets, offsets in (
        ("noun", "n", NOUNS, noun_offsets),
        ("verb", "v", VERBS, verb_offsets),
    ):
        cross = {"n": noun_offsets, "v": verb_offsets}
        text = _header(version)
        for key, lemmas, pointers in synsets:
            words = " ".join(f"{lemma} 0" for lemma in lemmas)
            ptrs = []
            for symbol, target in pointers:
                if ":" in target:
                    name, target_pos = target.split(":")
                    ptrs.append(f"{symbol} {cross[target_pos][name]:08d} {target_pos} 0101")
                else:
                    ptrs.append(f"{symbol} {offsets[target]:08d} {pos} 0000")
            frames = " 01 + 02 00" if pos == "v" else ""
            line = (
                f"{offsets[key]:08d} 03 {pos} {len(lemmas):02x} {words} {len(pointers):03d}"
                f"{''.join(' ' + p for p in ptrs)}{frames} | gloss of {key}; @ 12345678 n  \n"
            )
            assert len(text.encode("ascii")) == offsets[key]
            text += line
        (folder / f"data.{suffix}").write_bytes(text.encode("ascii"))
        index: dict[str, list[str]] = {}
        for key, lemmas, _ in synsets:
            for lemma in lemmas:
                index.setdefault(lemma.lower(), [])
                if key not in index[lemma.lower()]:
                    index[lemma.lower()].append(key)
        for lemma, keys in INDEX_ORDER.items():
            if pos == "n":
                index[lemma] = keys
        lines = [_header(version)]
        for lemma in sorted(index):
            keys = index[lemma]
            listed = " ".join(f"{offsets[k]:08d}" for k in keys)
            lines.append(f"{lemma} {pos} {len(keys)} 1 @ {len(keys)} 0 {listed}  \n")
        (folder / f"index.{suffix}").write_bytes("".join(lines).encode("ascii"))
    return folder


def _layout(synsets, pos: str, version: str) -> dict[str, int]:
    offsets = {}
    position = len(_header(version).encode("ascii"))
    for key, lemmas, pointers in synsets:
        offsets[key] = position
        words = " ".join(f"{lemma} 0" for lemma in lemmas)
        ptrs = "".join(
            f" {s} 00000000 {t.split(':')[1] if ':' in t else pos} {'0101' if ':' in t else '0000'}"
            for s, t in pointers
        )
        frames = " 01 + 02 00" if pos == "v" else ""
        line = (
            f"00000000 03 {pos} {len(lemmas):02x} {words} {len(pointers):03d}"
            f"{ptrs}{frames} | gloss of {key}; @ 12345678 n  \n"
        )
        position += len(line.encode("ascii"))
    return offsets


def zip_wordnet(folder: Path, archive: Path) -> Path:
    """Pack a database folder the way nltk's corpus zip is laid out (``wordnet/data.noun``)."""
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.iterdir()):
            out.write(path, f"wordnet/{path.name}")
    return archive
