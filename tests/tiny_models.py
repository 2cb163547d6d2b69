"""Tiny random-initialised stand-ins for the benchmark's five reference architectures.

Each builder trains a small tokenizer of the same kind the real hub checkpoint ships (WordPiece,
byte-level BPE or SentencePiece-style Unigram), built with that family's own transformers tokenizer
class, and a randomly initialised sequence classifier with tiny sizes, then saves both (safetensors
only) into one folder. The folder is a valid local ``source`` for ``textcls.sources.models.load_tokenizer``
and ``textcls.sources.models.load_classifier``, so the pipeline can run on every family offline.

    write_tiny_model("roberta", tmp_path / "roberta", corpus)

No network, no sentencepiece/protobuf: each vocabulary is learnt from ``corpus`` in plain Python (a small,
deterministic BPE learner, see below) after the family tokenizer's own normalizer and pre-tokenizer, and
handed to the transformers 5 tokenizer class in memory: BertTokenizer / DistilBertTokenizer(vocab=dict),
RobertaTokenizer(vocab=dict, merges=list), AlbertTokenizer / T5Tokenizer(vocab=[(piece, score), ...]).
The same corpus and seed give byte-identical folders.
"""

from __future__ import annotations

import math
import string
from collections import Counter
from pathlib import Path

FAMILIES = ("bert", "roberta", "distilbert", "albert", "t5")

# Hub checkpoint each tiny model stands for.
HUB_CHECKPOINTS = {
    "bert": "bert-base-uncased",
    "roberta": "roberta-base",
    "distilbert": "distilbert-base-uncased",
    "albert": "albert-base-v2",
    "t5": "t5-small",
}

# transformers 5's AlbertTokenizer declares model_input_names = ["input_ids", "attention_mask"], while
# transformers 4 (and ALBERT's BERT-style segment embeddings) gave ALBERT token_type_ids. False: the stock
# transformers 5 behaviour, which is what albert-base-v2 (no model_input_names in its tokenizer_config.json)
# gives with this project's pinned transformers; True sets them explicitly (saved in tokenizer_config.json).
ALBERT_TOKEN_TYPE_IDS = False

_WITH_TYPES = ["input_ids", "token_type_ids", "attention_mask"]
_NO_TYPES = ["input_ids", "attention_mask"]

EXPECTED = {  # what the reloaded folder must give (tests assert on it)
    "bert": {"model_class": "BertForSequenceClassification", "tokenizer_class": "BertTokenizer",
             "tokenizer_model": "WordPiece", "input_names": list(_WITH_TYPES)},
    "roberta": {"model_class": "RobertaForSequenceClassification", "tokenizer_class": "RobertaTokenizer",
                "tokenizer_model": "BPE", "input_names": list(_NO_TYPES)},
    "distilbert": {"model_class": "DistilBertForSequenceClassification", "tokenizer_class": "DistilBertTokenizer",
                   "tokenizer_model": "WordPiece", "input_names": list(_NO_TYPES)},
    "albert": {"model_class": "AlbertForSequenceClassification", "tokenizer_class": "AlbertTokenizer",
               "tokenizer_model": "Unigram", "input_names": list(_WITH_TYPES if ALBERT_TOKEN_TYPE_IDS else _NO_TYPES)},
    "t5": {"model_class": "T5ForSequenceClassification", "tokenizer_class": "T5Tokenizer",
           "tokenizer_model": "Unigram", "input_names": list(_NO_TYPES)},
}

# Tiny sizes shared by all families.
HIDDEN, LAYERS, HEADS, INTERMEDIATE = 32, 2, 2, 64
NUM_MERGES = 150  # learnt pieces on top of specials + alphabet (fewer if the corpus runs out of repeated pairs)
T5_EXTRA_IDS = 8  # sentinel tokens <extra_id_N> (t5-small has 100; kept small here)

_LOWER_ALPHABET = string.ascii_lowercase + string.digits + string.punctuation
_FULL_ALPHABET = string.ascii_letters + string.digits + string.punctuation

# Why not tokenizers.trainers? Their WordPiece and Unigram trainers iterate Rust hash maps, so two runs on one
# corpus give different vocabularies (WordPiece: other pieces and ids; Unigram: other scores). A small BPE
# learner below (ties broken by the pieces' text) makes the tokenizer a pure function of the corpus, like
# everything else in the pipeline; the models the tokenizers run with are still WordPiece / BPE / Unigram.


def _words(tokenizer, corpus: list[str]) -> Counter:
    """Word counts of ``corpus`` as ``tokenizer``'s own normalizer and pre-tokenizer split it."""
    backend = tokenizer.backend_tokenizer
    counts: Counter = Counter()
    for text in corpus:
        if backend.normalizer is not None:
            text = backend.normalizer.normalize_str(text)
        counts.update(word for word, _ in backend.pre_tokenizer.pre_tokenize_str(text))
    return counts


def _learn_merges(words: dict[tuple[str, ...], int], num_merges: int, join) -> tuple[list, dict]:
    """Greedy BPE: merge the most frequent adjacent pair (seen at least twice; ties: smallest pair) up to
    ``num_merges`` times. Returns the merges in order and the words' final segmentation."""
    segs = [list(word) for word in words]
    counts = list(words.values())
    pairs: Counter = Counter()
    where: dict[tuple[str, str], set[int]] = {}  # pair -> indices of the words that contain it
    for i, seg in enumerate(segs):
        for pair in zip(seg, seg[1:]):
            pairs[pair] += counts[i]
            where.setdefault(pair, set()).add(i)
    merges = []
    while len(merges) < num_merges and pairs:
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        if pairs[best] < 2:
            break
        merges.append(best)
        merged = join(*best)
        for i in sorted(where.pop(best, ())):
            seg, count = segs[i], counts[i]
            for pair in zip(seg, seg[1:]):
                pairs[pair] -= count
            out, j = [], 0
            while j < len(seg):
                if j + 1 < len(seg) and (seg[j], seg[j + 1]) == best:
                    out.append(merged)
                    j += 2
                else:
                    out.append(seg[j])
                    j += 1
            segs[i] = out
            for pair in zip(out, out[1:]):
                pairs[pair] += count
                where.setdefault(pair, set()).add(i)
        for pair in [p for p, n in pairs.items() if n <= 0]:
            del pairs[pair]
            where.pop(pair, None)
    segmented: Counter = Counter()
    for seg, count in zip(segs, counts):
        segmented[tuple(seg)] += count
    return merges, dict(segmented)


def _add(vocab: dict[str, int], pieces) -> None:
    for piece in pieces:
        vocab.setdefault(piece, len(vocab))


def _wordpiece_vocab(cls, corpus: list[str]) -> dict[str, int]:
    """bert-base-uncased layout for the specials ([PAD]=0), then every character both word-initial and as a
    ``##`` continuation (unseen words split into characters instead of one [UNK]), then learnt pieces."""
    words = _words(cls(), corpus)
    chars = sorted(set(_LOWER_ALPHABET).union(*words))
    split = {(w[0], *(f"##{c}" for c in w[1:])): n for w, n in words.items()}
    merges, _ = _learn_merges(split, NUM_MERGES, lambda a, b: a + b[2:])
    vocab: dict[str, int] = {}
    _add(vocab, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    _add(vocab, chars + [f"##{c}" for c in chars])
    _add(vocab, (a + b[2:] for a, b in merges))
    return vocab


def _bpe_vocab(cls, corpus: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """roberta-base layout: <s>=0 <pad>=1 </s>=2 <unk>=3, the 256 byte symbols, learnt merges, <mask> last."""
    from tokenizers import pre_tokenizers

    words = _words(cls(add_prefix_space=False), corpus)  # ByteLevel: already byte symbols, Ġ = space
    merges, _ = _learn_merges({tuple(w): n for w, n in words.items()}, NUM_MERGES, str.__add__)
    vocab: dict[str, int] = {}
    _add(vocab, ["<s>", "<pad>", "</s>", "<unk>"])
    _add(vocab, sorted(pre_tokenizers.ByteLevel.alphabet()))
    _add(vocab, (a + b for a, b in merges))
    _add(vocab, ["<mask>"])
    return vocab, merges


def _unigram_vocab(cls, corpus: list[str], specials: list[str], alphabet: str, **init) -> list[tuple[str, float]]:
    """Specials (score 0), then characters (with ▁) and BPE-learnt pieces, each scored by the log of its
    smoothed frequency in the corpus's final segmentation: a unigram language model over those pieces."""
    words = _words(cls(**init), corpus)  # Metaspace: words start with ▁
    chars = sorted(set(alphabet).union("\u2581", *words))
    merges, segmented = _learn_merges({tuple(w): n for w, n in words.items()}, NUM_MERGES, str.__add__)
    pieces = [p for p in dict.fromkeys(chars + [a + b for a, b in merges]) if p not in specials]
    counts: Counter = Counter()
    for word, count in segmented.items():
        for piece in word:
            counts[piece] += count
    total = sum(counts.values()) + 0.5 * len(pieces)
    return [(s, 0.0) for s in specials] + [(p, math.log((counts[p] + 0.5) / total)) for p in pieces]


def build_tokenizer(family: str, corpus: list[str], max_positions: int = 64):
    """The family's own transformers tokenizer class, trained on ``corpus``; ``model_max_length`` =
    ``max_positions``."""
    from transformers import AlbertTokenizer, BertTokenizer, DistilBertTokenizer, RobertaTokenizer, T5Tokenizer

    if family in ("bert", "distilbert"):
        cls = BertTokenizer if family == "bert" else DistilBertTokenizer
        return cls(vocab=_wordpiece_vocab(cls, corpus), do_lower_case=True, model_max_length=max_positions)
    if family == "roberta":
        vocab, merges = _bpe_vocab(RobertaTokenizer, corpus)
        return RobertaTokenizer(vocab=vocab, merges=merges, add_prefix_space=False, model_max_length=max_positions)
    if family == "albert":
        # albert-base-v2: <pad>=0 <unk>=1 [CLS]=2 [SEP]=3 [MASK]=4 (AlbertTokenizer hard-codes unk_id=1)
        vocab = _unigram_vocab(AlbertTokenizer, corpus, ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"],
                               _LOWER_ALPHABET)
        extra = {"model_input_names": list(EXPECTED["albert"]["input_names"])}
        return AlbertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=max_positions, **extra)
    if family == "t5":
        # t5-small: <pad>=0 </s>=1 <unk>=2 (T5Tokenizer hard-codes unk_id=2); sentinels added after the vocab
        vocab = _unigram_vocab(T5Tokenizer, corpus, ["<pad>", "</s>", "<unk>"], _FULL_ALPHABET, extra_ids=0)
        return T5Tokenizer(vocab=vocab, extra_ids=T5_EXTRA_IDS, model_max_length=max_positions)
    raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")


def build_config(family: str, tokenizer, num_labels: int = 2, max_positions: int = 64):
    """A tiny config of the family's own config class, sized for ``tokenizer``."""
    from transformers import AlbertConfig, BertConfig, DistilBertConfig, RobertaConfig, T5Config

    vocab_size = len(tokenizer)
    common = dict(num_labels=num_labels, vocab_size=vocab_size, pad_token_id=tokenizer.pad_token_id)
    bert_like = dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                     intermediate_size=INTERMEDIATE)
    if family == "bert":
        return BertConfig(max_position_embeddings=max_positions, **bert_like, **common)
    if family == "roberta":
        # position ids start at pad_token_id + 1 = 2, hence the +2
        return RobertaConfig(max_position_embeddings=max_positions + 2, type_vocab_size=1,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                             **bert_like, **common)
    if family == "distilbert":
        return DistilBertConfig(dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS, hidden_dim=INTERMEDIATE,
                                max_position_embeddings=max_positions, **common)
    if family == "albert":
        return AlbertConfig(embedding_size=16, max_position_embeddings=max_positions,
                            bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                            **bert_like, **common)
    if family == "t5":
        # relative position buckets: no position table to size; max_positions only sets model_max_length
        return T5Config(d_model=HIDDEN, d_kv=HIDDEN // HEADS, d_ff=INTERMEDIATE, num_layers=1, num_decoder_layers=1,
                        num_heads=HEADS, feed_forward_proj="relu", decoder_start_token_id=0, eos_token_id=1,
                        num_labels=num_labels, vocab_size=vocab_size, pad_token_id=0)
    raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")


def write_tiny_model(family: str, folder: Path, corpus: list[str], num_labels: int = 2, seed: int = 0,
                     max_positions: int = 64) -> Path:
    """Train a tokenizer on ``corpus``, build a random tiny ``family`` classifier (seeded), and save both
    (safetensors only) to ``folder``; returns ``folder``."""
    import torch
    import transformers

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    if not corpus:
        raise ValueError("corpus is empty: the tokenizer needs some text to learn its vocabulary from")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(family, corpus, max_positions)
    config = build_config(family, tokenizer, num_labels, max_positions)
    torch.manual_seed(seed)
    model = getattr(transformers, EXPECTED[family]["model_class"])(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    leftovers = sorted(p.name for p in folder.glob("*.bin"))
    if leftovers or not list(folder.glob("*.safetensors")):
        raise RuntimeError(f"{folder}: expected safetensors weights only, found {leftovers or 'no *.safetensors'}")
    return folder
