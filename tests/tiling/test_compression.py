"""Compression of Poincaré embeddings: exact decoding, bits per node, reconstruction error (mpmath)."""

import random

import mpmath
import pytest

from hyperbolic import reference
from tiling import LTiling, compression, group


@pytest.fixture(scope="module")
def data(shared_data):
    """The published Poincaré embeddings of the compression paper (../shared/data, see its SOURCE.md)."""
    return shared_data / "HyperbolicTiling_Compression" / "dataset"


def test_word_code_round_trip_and_costs():
    rng = random.Random(0)
    for _ in range(50):
        word, generator = [], rng.choice("ab")
        for _ in range(rng.randint(0, 30)):
            word.append((generator, rng.randint(1, 5)))
            generator = "a" if generator == "b" else "b"
        bits = compression.encode_word(word)
        decoded, end = compression.decode_word(bits + "1101", 0)
        assert decoded == word and end == len(bits)
        assert len(bits) == 1 + sum(2 if e in (1, 5) else 3 for _, e in word) + 3
    with pytest.raises(ValueError, match="alternate"):
        compression.encode_word([("a", 1), ("a", 2)])


def test_word_of_applied_letters_is_the_group_element():
    rng = random.Random(1)
    with mpmath.mp.workprec(400):
        for radius in (0.2, 4, 30, 90):
            point = reference.point_at(radius, reference.random_direction(2, rng))
            reduction = group.reduce_exact(point, record_letters=True)
            word = compression.word_of(reduction.letters)
            assert all(0 < e < 6 for _, e in word)
            assert all(g != h for (g, _), (h, _) in zip(word, word[1:]))
            assert group.word_to_matrix(word) == reduction.T


@pytest.mark.parametrize("float_bits", [None, 44])
def test_encode_decode_is_exact_and_close(float_bits):
    rng = random.Random(2)
    with mpmath.mp.workprec(600):
        points = [reference.point_at(r, reference.random_direction(2, rng)) for r in (0, 1, 7, 60, 150)]
        encoded = compression.compress(points, float_bits=float_bits)
        elements, parts = compression.decompress(encoded)
        again = compression.compress(compression.decoded_points(encoded), float_bits=float_bits)
        assert again.words == encoded.words and again.floats == encoded.floats  # decoding is exact
        decoded = compression.decoded_points(encoded)
        errors = [float(reference.dist(a, b)) for a, b in zip(points, decoded, strict=True)]
    bound = 2e-16 if float_bits is None else 2**0.5 * 2.0**-float_bits
    assert max(errors) <= 2 * bound
    assert len(encoded.to_bytes()) == -(-encoded.total_bits() // 8)


def test_grqc_subset_ratio_and_error(data):
    names, points = compression.read_poincare_embedding(data / "grqc_500.emb", 500)
    assert len(points) == 4158 and names[0] == "0"
    with mpmath.mp.workprec(500):
        encoded = compression.compress(points[:400], float_bits=compression.fixed_point_bits(1e-13))
        decoded = compression.decoded_points(encoded)
        error = max(float(reference.dist(a, b)) for a, b in zip(points[:400], decoded, strict=True))
    assert error < 1e-13
    assert encoded.bits_per_node() / 1000 < 0.142


def test_import_into_the_model_is_exact(data):
    _, points = compression.read_poincare_embedding(data / "grqc_500.emb", 500)
    model = LTiling(max_radius=40)
    with mpmath.mp.workprec(500):
        x = model.from_reference(points[:50])
        errors = [float(reference.dist(a, b)) for a, b in zip(points[:50], model.to_reference(x), strict=True)]
    assert max(errors) < 1e-15


@pytest.mark.slow
@pytest.mark.parametrize("name, bits, ratio", [("grqc_500.emb", 500, 0.142), ("bio-yeast.r2.emb", 4000, 0.229)])
def test_full_datasets_reach_the_published_ratio(data, name, bits, ratio):
    _, points = compression.read_poincare_embedding(data / name, bits)
    with mpmath.mp.workprec(bits):
        encoded = compression.compress(points, float_bits=compression.fixed_point_bits(1e-13))
        decoded = compression.decoded_points(encoded)
        error = max(float(reference.dist(a, b)) for a, b in zip(points, decoded, strict=True))
    assert error < 1e-12
    assert encoded.bits_per_node() / (2 * bits) <= ratio
