import numpy as np
from datasketch import MinHash, MinHashLSH

from dedupe.minhash import NUM_PERM, SEED, Signer, shingle_hash
from dedupe.text import shingles, words

TEXT = (
    "Secretary Blinken met Chief Cabinet Secretary Hayashi in Tokyo on January 7, 2025, "
    "to discuss regional security and the alliance between the two countries."
)


def test_signature_equals_datasketch_update_loop() -> None:
    tokens = words(TEXT)
    ours = Signer().sign([tokens])[0]
    ref = MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=shingle_hash)
    for s in shingles(tokens):
        ref.update(s.encode("utf-8"))
    assert np.array_equal(ours, ref.hashvalues)


def test_signatures_work_in_datasketch_lsh() -> None:
    signer = Signer()
    a, b, c = signer.sign(
        [words(TEXT), words(TEXT + " Reuters reported."), words("completely different text " * 5)]
    )
    lsh = MinHashLSH(threshold=0.5, num_perm=NUM_PERM)
    lsh.insert("a", signer.to_datasketch(a))
    lsh.insert("c", signer.to_datasketch(c))
    assert lsh.query(signer.to_datasketch(b)) == ["a"]


def test_short_document_gets_empty_signature() -> None:
    sig = Signer().sign([["too", "short"]])[0]
    assert (sig == np.iinfo(np.uint32).max).all()
