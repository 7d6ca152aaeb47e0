"""Corpus readers: folder, zip/jar, JSONL, single file, HF (error path); skip reasons; order and seeds."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from attnlens.errors import CorpusError
from attnlens.mining import MiningStats, SourceFile, iter_corpus
from tests.mining.conftest import JAVA_FIXTURES

GOOD = "class A { int x = 1; }\n"


def make_messy_folder(root: Path) -> Path:
    """A folder with one file of each kind a reader must skip, plus two good ones."""
    (root / "sub").mkdir(parents=True)
    (root / "A.java").write_text(GOOD)
    (root / "sub" / "B.java").write_text("class B { /* é */ }\n")
    (root / "sub" / "Copy.java").write_text(GOOD)  # exact duplicate of A.java
    (root / "Empty.java").write_text("  \n\t\n")
    (root / "Binary.java").write_bytes(b"class C {\x00\x01}")
    (root / "Latin1.java").write_bytes('class D { String s = "caf\xe9"; }'.encode("latin-1"))
    (root / "Huge.java").write_text("class E {}\n" + "// filler\n" * 200)
    (root / "notes.txt").write_text("not java")
    return root


def test_folder_reader_skips_and_counts_every_bad_kind(tmp_path):
    stats = MiningStats()
    files = list(iter_corpus(make_messy_folder(tmp_path / "c"), max_file_bytes=500, stats=stats))
    assert [f.path for f in files] == ["A.java", "sub/B.java"]
    assert stats.files_read == 2
    assert dict(stats.skipped) == {"duplicate": 1, "empty": 1, "binary": 1, "not_utf8": 1, "oversized": 1}
    first = files[0]
    assert first.text == GOOD
    assert first.sha256 == hashlib.sha256(GOOD.encode()).hexdigest()
    assert first.corpus == str((tmp_path / "c").resolve())


def test_zip_and_jar_read_the_same_files_as_the_folder(tmp_path):
    folder = make_messy_folder(tmp_path / "c")
    for suffix in (".zip", ".jar"):
        archive = tmp_path / f"sources{suffix}"
        with zipfile.ZipFile(archive, "w") as bundle:
            for file in sorted(folder.rglob("*")):
                if file.is_file():
                    bundle.write(file, file.relative_to(folder).as_posix())
        stats = MiningStats()
        files = list(iter_corpus(archive, max_file_bytes=500, stats=stats))
        assert sorted(f.path for f in files) == ["A.java", "sub/B.java"]
        assert dict(stats.skipped) == {"duplicate": 1, "empty": 1, "binary": 1, "not_utf8": 1, "oversized": 1}


def test_jsonl_reader_uses_the_content_field_and_skips_bad_rows(tmp_path):
    rows = [
        {"content": GOOD, "path": "repo/A.java"},
        {"content": "class B {}\n"},
        {"text": "no content field"},
        {"content": GOOD},  # duplicate
        {
            "content": "class C {}\n",
            "near_dups_stkv2_idx": [17],
        },  # contaminated: near-duplicate of training data
        {"content": "class D {}\n", "near_dups_stkv2_idx": []},
    ]
    lines = [json.dumps(r) for r in rows]
    lines.insert(2, "{not json")
    corpus = tmp_path / "files.jsonl"
    corpus.write_text("\n".join(lines) + "\n\n")
    stats = MiningStats()
    files = list(iter_corpus(corpus, max_file_bytes=10_000, stats=stats))
    assert [(f.path, f.text) for f in files] == [
        ("repo/A.java", GOOD),
        ("line:2", "class B {}\n"),
        ("line:7", "class D {}\n"),
    ]
    assert dict(stats.skipped) == {
        "bad_json_line": 1,
        "missing_field": 1,
        "duplicate": 1,
        "near_duplicate_of_training_data": 1,
    }
    other_field = tmp_path / "other.jsonl"
    other_field.write_text(json.dumps({"code": GOOD}) + "\n")
    assert [f.text for f in iter_corpus(other_field, max_file_bytes=10_000, jsonl_field="code")] == [GOOD]


def test_single_java_file_is_a_corpus_of_one():
    files = list(iter_corpus(JAVA_FIXTURES / "Broken.java", max_file_bytes=10_000))
    assert [f.path for f in files] == ["Broken.java"]


def test_shuffled_order_is_a_seeded_permutation():
    def order(seed):
        return [f.path for f in iter_corpus(JAVA_FIXTURES, max_file_bytes=100_000, shuffle_seed=seed)]

    plain = order(None)
    assert order(3) == order(3)
    assert sorted(order(3)) == sorted(plain)
    assert len({tuple(order(seed)) for seed in range(8)}) > 1


def test_folder_order_is_sorted_and_stable():
    paths = [f.path for f in iter_corpus(JAVA_FIXTURES, max_file_bytes=100_000)]
    assert paths == [
        "Broken.java",
        "Lambdas.java",
        "Literals.java",
        "Operators.java",
        "Unicode.java",
        "pkg/Generics.java",
    ]


def test_reader_streams_lazily(tmp_path):
    folder = make_messy_folder(tmp_path / "c")
    stream = iter_corpus(folder, max_file_bytes=500)
    first = next(stream)
    assert isinstance(first, SourceFile) and first.path == "A.java"


@pytest.mark.parametrize("bad", ["missing/dir", "corpus.tar.gz"])
def test_unreadable_corpus_paths_raise_corpus_error(tmp_path, bad):
    target = tmp_path / bad
    if bad.endswith(".gz"):
        target.write_bytes(b"\x1f\x8b")
    with pytest.raises(CorpusError):
        list(iter_corpus(target, max_file_bytes=100))


def test_broken_zip_raises_corpus_error(tmp_path):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(b"PK not really a zip")
    with pytest.raises(CorpusError, match="zip"):
        list(iter_corpus(archive, max_file_bytes=100))


def test_hf_dataset_without_datasets_package_says_what_to_install():
    try:
        import datasets  # noqa: F401
    except ImportError:
        with pytest.raises(CorpusError, match="pip install datasets"):
            list(iter_corpus("hf:LaughingLogits/Stackless_Java_V2", max_file_bytes=100))
    else:
        pytest.skip("the datasets package is installed; this test covers its absence")
