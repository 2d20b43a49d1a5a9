"""Text data: the tokeniser and vocabulary, the generated task (checked against a hand-written
parser), the real-corpus loaders on in-memory `datasets` splits (no network) and their cache, and
training end to end. The text models are tested in test_models.py."""

import random
import re
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import torch

from lstsd_edu.cli import main
from lstsd_edu.data import (
    CLASS_NAMES,
    CORPORA,
    DATASETS,
    TEXTSYNTH_MAX_LEN,
    Vocabulary,
    corpus_dataset,
    generate_textsynth,
    load_corpus,
    load_dataset,
    load_textsynth,
    textsynth_vocabulary,
    tokenize,
    vocabulary,
)
from lstsd_edu.data import textsynth as grammar
from lstsd_edu.errors import ConfigError
from lstsd_edu.experiments import PRESETS, preset, train


# ---------------------------------------------------------------------------------------------
# Tokeniser and vocabulary
# ---------------------------------------------------------------------------------------------
def test_tokenize_words_numbers_punctuation_and_html_breaks():
    assert tokenize("The soup, sadly, wasn't hot!<br /><br />10/10") == [
        "the",
        "soup",
        ",",
        "sadly",
        ",",
        "wasn't",
        "hot",
        "!",
        "10",
        "/",
        "10",
    ]


def test_vocabulary_ranks_by_count_then_alphabet_and_reserves_pad_and_unk():
    vocab = Vocabulary.build(["b a a", "c b a", "d"], max_size=5)
    # counts a:3, b:2, c:1, d:1 -> c before d alphabetically, and only 5 - 2 = 3 words fit
    assert vocab.words == ["<pad>", "<unk>", "a", "b", "c"]
    x = vocab.encode(["a b d", "", "c c c c c c"], max_len=4)
    assert x.dtype == torch.long and x.shape == (3, 4)
    assert x.tolist() == [
        [2, 3, Vocabulary.UNK, 0],  # d is out of vocabulary
        [Vocabulary.UNK, 0, 0, 0],  # an empty text is one <unk>, never all padding
        [4, 4, 4, 4],
    ]  # cut to max_len
    assert vocab.decode(x[0]) == "a b <unk>"


def test_vocabulary_min_freq_and_save_load(tmp_path):
    vocab = Vocabulary.build(["x x y"], min_freq=2)
    assert vocab.words == ["<pad>", "<unk>", "x"]
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json").words == vocab.words
    with pytest.raises(ConfigError, match="vocab_size"):
        Vocabulary.build(["a"], max_size=2)


# ---------------------------------------------------------------------------------------------
# textsynth, checked against a parser written out by hand
# ---------------------------------------------------------------------------------------------
NOUN_TOPIC = {noun: t for t, topic in enumerate(grammar.TOPICS) for noun in grammar.NOUNS[topic]}
POLARITY = {adj: s for s, words in enumerate(grammar.SHARED_ADJECTIVES) for adj in words}
POLARITY |= {adj: s for pair in grammar.ADJECTIVES.values() for s, words in enumerate(pair) for adj in words}


def clause_label(words: list[str]) -> int:
    """topic of the noun, sentiment of the adjective, flipped by a negation."""
    (topic,) = [NOUN_TOPIC[w] for w in words if w in NOUN_TOPIC]
    (polarity,) = [POLARITY[w] for w in words if w in POLARITY]
    negated = any(w in grammar.NEGATIONS for w in words)
    return 2 * topic + (polarity ^ negated)


def parse(sentence: str) -> tuple[list[str], list[str] | None]:
    """(deciding clause, other clause or None), read from the word order alone."""
    words = sentence.split()
    for contrast in grammar.CONTRASTS:
        if contrast in words:
            i = words.index(contrast)
            return words[i + 1 :], words[:i]
    concessive = [i for i, w in enumerate(words) if w in ("although", "though", "while")]
    if not concessive:
        return words, None
    i = concessive[0]
    start = i - 1 if words[i] == "though" and words[i - 1] == "even" else i
    commas = [j for j, w in enumerate(words) if w == "," and j > i]
    if commas:  # although A , B: the main clause follows the comma
        return words[commas[0] + 1 :], words[i + 1 : commas[0]]
    return words[:start], words[i + 1 :]  # B although A


@pytest.fixture(scope="module")
def frames():
    return generate_textsynth(3000, 1000, seed=0)


def test_textsynth_labels_follow_word_order_and_bags_are_ambiguous(frames):
    train, test = frames
    for frame in (train, test):
        for row in frame.itertuples():
            main_clause, other = parse(row.text)
            assert clause_label(main_clause) == row.label, row.text
            assert row.class_name == CLASS_NAMES[row.label]
            if other is None:
                assert row.structure == "simple"
            else:
                # both readings are in the bag: swap the clauses and the label changes
                assert clause_label(other) != row.label, row.text
                assert clause_label(other) % 2 != row.label % 2, "the other clause contrasts"
    structures = Counter(train.structure)
    assert set(structures) == set(grammar.STRUCTURES)
    assert structures["simple"] < 0.35 * len(train), "most sentences need word order"
    counts = np.bincount(train.label, minlength=len(CLASS_NAMES))
    assert counts.min() > 0.8 * counts.mean(), "classes are balanced"
    assert train.negated.any() and (~train.negated).any()


def test_textsynth_is_reproducible_unique_and_leaves_global_rng_alone(frames):
    train, test = frames
    assert len(train) == 3000 and len(test) == 1000
    assert train.text.is_unique and not set(train.text) & set(test.text)
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    before = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    again, _ = generate_textsynth(3000, 1000, seed=0)
    assert (random.random(), np.random.rand(), torch.rand(1)) == before
    assert again.equals(train), "same seed, same sentences"
    other, _ = generate_textsynth(3000, 1000, seed=1)
    assert not other.text.equals(train.text)


def test_textsynth_dataset_tensors_and_vocabulary(frames):
    data = load_textsynth(3000, 1000, seed=0)
    vocab = textsynth_vocabulary()
    assert data.input_shape == (TEXTSYNTH_MAX_LEN, len(vocab)) and data.num_classes == 6
    assert data.train.x.shape == (3000, TEXTSYNTH_MAX_LEN) and data.train.x.dtype == torch.long
    lengths = (data.train.x != 0).sum(1)
    # padding only at the end, and no sentence was cut
    assert torch.equal(data.train.x != 0, torch.arange(TEXTSYNTH_MAX_LEN) < lengths[:, None])
    assert not (data.train.x == Vocabulary.UNK).any(), "every generated word is in the vocabulary"
    train, _ = frames
    assert vocab.decode(data.train.x[7]) == train.text[7]
    assert vocabulary("textsynth").words == vocab.words
    assert data.train.y.tolist() == train.label.tolist()


def test_textsynth_is_registered_and_takes_label_noise():
    assert {"textsynth", "ag_news", "sst2", "imdb"} <= set(DATASETS)
    clean, noisy = load_dataset("textsynth"), load_dataset("textsynth", noise=0.3)
    assert torch.equal(noisy.train.x, clean.train.x) and torch.equal(noisy.test.y, clean.test.y)
    assert torch.equal(noisy.train.clean_y, clean.train.y)
    assert torch.equal(noisy.train.flipped, noisy.train.y != clean.train.y)
    assert 0.27 < noisy.train.flipped.float().mean() < 0.33


# ---------------------------------------------------------------------------------------------
# Real corpora: the real loading and tokenising code, on small in-memory `datasets` splits
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def fake_hub(monkeypatch):
    """Replace `datasets.load_dataset` by small in-memory splits shaped like the Hub's."""
    datasets = pytest.importorskip("datasets")
    calls = []
    tables = {
        "fancyzhx/ag_news": {
            "train": {
                "text": [
                    "Stocks rally as oil falls",
                    "Team wins the cup final",
                    "New chip doubles speed",
                    "Peace talks resume in Geneva",
                    "Oil prices fall again",
                ],
                "label": [2, 1, 3, 0, 2],
            },
            "test": {"text": ["Oil and stocks", "Unknown words only"], "label": [2, 0]},
        },
        "stanfordnlp/sst2": {
            "train": {
                "idx": [0, 1, 2],
                "sentence": ["a gorgeous film", "dull , dull , dull", "not bad"],
                "label": [1, 0, 1],
            },
            "validation": {"idx": [0, 1], "sentence": ["gorgeous", "dull"], "label": [1, 0]},
            "test": {"idx": [0], "sentence": ["hidden"], "label": [-1]},
        },
        "stanfordnlp/imdb": {
            "train": {"text": ["Loved it.<br /><br />Great cast", "Boring. Awful."], "label": [1, 0]},
            "test": {"text": ["Great", "Awful<br />film"], "label": [1, 0]},
            "unsupervised": {"text": ["no label"], "label": [-1]},
        },
    }

    def load(hub_id, cache_dir=None, **kwargs):
        calls.append((hub_id, cache_dir))
        return datasets.DatasetDict(
            {split: datasets.Dataset.from_dict(columns) for split, columns in tables[hub_id].items()}
        )

    monkeypatch.setattr(datasets, "load_dataset", load)
    return calls


def test_ag_news_is_fetched_tokenised_and_cached(fake_hub, tmp_path, monkeypatch):
    data = load_corpus("ag_news", root=tmp_path, vocab_size=8, max_len=6)
    assert fake_hub == [("fancyzhx/ag_news", str(tmp_path / "hf"))]
    assert data.name == "ag_news" and data.num_classes == 4 and data.input_shape == (6, 8)
    assert data.train.x.shape == (5, 6) and data.test.x.shape == (2, 6)
    assert data.train.y.tolist() == [2, 1, 3, 0, 2] and not data.train.flipped.any()
    vocab = vocabulary("ag_news", root=tmp_path, vocab_size=8, max_len=6)
    # "oil" (3×) and "fall"/"falls"… ranked by count; the test set's unseen words become <unk>
    assert vocab.words[2] == "oil" and len(vocab) == 8
    assert vocab.decode(data.test.x[0]).split()[0] == "oil"
    assert vocab.decode(data.test.x[1]) == "<unk> <unk> <unk>"
    assert list(tmp_path.glob("text_ag_news_v8_t6.pt"))

    def offline(*args, **kwargs):
        raise AssertionError("the cache must be used")

    monkeypatch.setattr("datasets.load_dataset", offline)
    again = load_corpus("ag_news", root=tmp_path, vocab_size=8, max_len=6)
    assert torch.equal(again.train.x, data.train.x) and torch.equal(again.test.y, data.test.y)


def test_sst2_uses_validation_as_test_and_imdb_strips_html(fake_hub, tmp_path):
    sst2 = load_corpus("sst2", root=tmp_path)
    assert len(sst2.test) == 2 and sst2.test.y.tolist() == [1, 0], "validation split, labelled"
    assert sst2.input_shape[0] == CORPORA["sst2"].max_len
    imdb = load_corpus("imdb", root=tmp_path)
    vocab = vocabulary("imdb", root=tmp_path)
    assert "br" not in vocab.words and vocab.decode(imdb.test.x[1]) == "awful <unk>"
    assert len(imdb.train) == 2 and imdb.num_classes == 2


def test_corpus_errors_are_config_errors(fake_hub, tmp_path, monkeypatch):
    import datasets

    def down(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(datasets, "load_dataset", down)
    with pytest.raises(ConfigError, match=r"sst2.*connection"):
        load_corpus("sst2", root=tmp_path)
    with pytest.raises(ConfigError, match="dataset"):
        load_corpus("wikitext", root=tmp_path)
    bad = datasets.Dataset.from_dict({"text": ["a"], "label": [7]})
    with pytest.raises(ConfigError, match=r"labels must be in \[0, 4\)"):
        corpus_dataset("ag_news", bad, bad)


def test_missing_datasets_package_is_a_config_error(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError("No module named 'datasets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(ConfigError, match=r"lstsd-edu\[text\]"):
        load_corpus("imdb", root=tmp_path)


def damage_corpus_cache(path, damage: str) -> None:
    if damage == "garbage":
        path.write_bytes(b"garbage, not a torch file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        saved = torch.load(path, weights_only=True)
        if damage == "missing key":
            del saved["test_y"]
        else:  # one label fewer than rows
            saved["train_y"] = saved["train_y"][:-1]
        torch.save(saved, path)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing key", "wrong shape"])
def test_damaged_corpus_cache_is_a_config_error_naming_the_file(fake_hub, tmp_path, damage):
    load_corpus("ag_news", root=tmp_path, vocab_size=8, max_len=6)
    path = tmp_path / "text_ag_news_v8_t6.pt"
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "written whole, no temporary file left"
    damage_corpus_cache(path, damage)
    fake_hub.clear()
    with pytest.raises(ConfigError, match=re.escape(str(path)) + " is damaged .*delete it"):
        load_corpus("ag_news", root=tmp_path, vocab_size=8, max_len=6)
    with pytest.raises(ConfigError, match="delete it"):
        vocabulary("ag_news", root=tmp_path, vocab_size=8, max_len=6)
    assert fake_hub == [], "a damaged download is not fetched again behind the user's back"
    path.unlink()  # the fix the message gives
    assert len(load_corpus("ag_news", root=tmp_path, vocab_size=8, max_len=6).train) == 5


# ---------------------------------------------------------------------------------------------
# Training end to end: trainer, buffer, diagnostics and CLI unchanged
# ---------------------------------------------------------------------------------------------
def small(data, n_train=512, n_test=256):
    return replace(data, train=data.train.subset(torch.arange(n_train)), test=data.test.subset(torch.arange(n_test)))


def test_lstsd_trains_on_text_with_diagnostics():
    assert PRESETS["textsynth"].model == "textcnn"
    data = small(load_dataset("textsynth", noise=0.3))
    config = preset("textsynth", epochs=3, lag=1, ramp=0, device="cpu")
    run = train("lstsd", config, seed=0, diagnostics=True, data=data)
    assert len(run.history) == 3 and run.history.train_loss.notna().all()
    div = run.trainer.divergences
    assert set(div.epoch) == {1, 2, 3} and len(div) == 3 * 512
    assert div.loc[div.epoch == 3, "kl_long"].notna().all(), "records exist from epoch 2 on"
    assert div.flipped.sum() == int(data.train.flipped.sum()) * 3


@pytest.mark.parametrize("model", ["textbag", "textcnn"])
def test_cli_compare_on_textsynth(model, tmp_path, capsys):
    code = main(
        [
            "compare",
            "--dataset",
            "textsynth",
            "--model",
            model,
            "--epochs",
            "1",
            "--methods",
            "ce,lstsd",
            "--seeds",
            "0",
            "--no-progress",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert f"textsynth · {model}" in out and (tmp_path / "summary.csv").exists()


def test_textsynth_structures_option():
    train, _ = generate_textsynth(200, 10, structures={"simple": 1.0, "but": 1.0})
    assert set(train.structure) == {"simple", "but"}
    data = load_textsynth(50, 10, structures={"simple": 1.0})
    assert (data.train.x != 0).sum(1).max() <= 6 + 4 + 4, "one clause plus fillers"
    with pytest.raises(ConfigError, match="structure"):
        generate_textsynth(10, 10, structures={"sarcasm": 1.0})
    with pytest.raises(ConfigError, match="positive weight"):
        generate_textsynth(10, 10, structures={"but": 0.0})
