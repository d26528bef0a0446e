"""The ECB+ story set as a replay, its scores, and the baselines it is compared with.

- Order: dated articles by date (a fixed hour within the day from a hash of the id, so
  one day's reports come in a stable order); undated ones (most ``ecb`` articles) are
  spread through that sequence at a position given by a hash of their id, with no
  time (``published=None``: the window does not apply to them).
- Scores (on a prediction ``{article id: group}``): pairwise P/R/F1 over article pairs
  (Miranda et al., EMNLP 2018), B-cubed P/R/F1 (Bagga and Baldwin 1998), and the share
  of distractor pairs (two different stories that share vocabulary, mostly the two
  events of one topic) with at least one group holding articles of both.
- Rules: the 121 keyword rules matched with ``monitor.match.phrase_pattern`` over
  title + body; one alert per (rule, predicted story), sent by the first matching
  article in replay order. A gold (rule, story) pair "has an alert of its own" when one
  of those alerts was sent by an article of that gold story.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.match import phrase_pattern

Article = dict[str, Any]
Stream = list[tuple[datetime | None, Article]]
Prediction = dict[str, str]
_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class Corpus:
    articles: list[Article]
    stories: dict[str, Any]
    distractor_pairs: list[dict[str, Any]]
    rules: list[dict[str, Any]]


def load(folder: Path) -> Corpus:
    """articles.jsonl.gz and stories.json, read in place."""
    with gzip.open(folder / "articles.jsonl.gz", "rt", encoding="utf-8") as lines:
        articles = [json.loads(line) for line in lines]
    meta = json.loads((folder / "stories.json").read_text(encoding="utf-8"))
    return Corpus(articles, meta["stories"], meta["distractor_pairs"], meta["rules"])


def _unit(text: str) -> float:
    """A stable number in [0, 1) from a string."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big") / 2**64


def replay(corpus: Corpus, split: str) -> Stream:
    """The split's articles in replay order, each with its publication time or None."""
    chosen = [a for a in corpus.articles if split == "all" or a["split"] == split]
    dated = []
    for a in chosen:
        if a["published"]:
            day = datetime.fromisoformat(a["published"]).replace(tzinfo=UTC)
            dated.append((day + timedelta(seconds=int(_unit(a["id"]) * 86_400)), a))
    dated.sort(key=lambda ta: (ta[0], ta[1]["id"]))
    slots: dict[int, list[Article]] = defaultdict(list)
    for a in sorted((a for a in chosen if not a["published"]), key=lambda a: (_unit(a["id"] + "#"), a["id"])):
        slots[int(_unit(a["id"] + "#") * (len(dated) + 1))].append(a)
    stream: Stream = []
    for i in range(len(dated) + 1):
        stream += [(None, a) for a in slots.get(i, [])]
        if i < len(dated):
            stream.append(dated[i])
    return stream


def _pairs(sizes: Iterable[int]) -> int:
    return sum(n * (n - 1) // 2 for n in sizes)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score(pred: Prediction, stream: Stream, corpus: Corpus) -> dict[str, Any]:
    """Pairwise and B-cubed P/R/F1, groups, distractor pairs merged (see module doc)."""
    gold = {a["id"]: a["story"] for _, a in stream}
    by_gold: dict[str, set[str]] = defaultdict(set)
    by_pred: dict[str, set[str]] = defaultdict(set)
    for i, story in gold.items():
        by_gold[story].add(i)
        by_pred[pred[i]].add(i)
    tp = sum(_pairs(Counter(gold[i] for i in g).values()) for g in by_pred.values())
    pp, gp = _pairs(len(g) for g in by_pred.values()), _pairs(len(g) for g in by_gold.values())
    pw_p, pw_r = (tp / pp if pp else 1.0), (tp / gp if gp else 1.0)
    b_p = sum(len(by_pred[pred[i]] & by_gold[gold[i]]) / len(by_pred[pred[i]]) for i in gold) / len(gold)
    b_r = sum(len(by_pred[pred[i]] & by_gold[gold[i]]) / len(by_gold[gold[i]]) for i in gold) / len(gold)
    groups_of: dict[str, set[str]] = defaultdict(set)
    for i, story in gold.items():
        groups_of[story].add(pred[i])
    pairs = [p["stories"] for p in corpus.distractor_pairs if all(s in by_gold for s in p["stories"])]
    merged = [f"{a}+{b}" for a, b in pairs if groups_of[a] & groups_of[b]]
    return {
        "pw_p": pw_p, "pw_r": pw_r, "pw_f1": _f1(pw_p, pw_r),
        "b3_p": b_p, "b3_r": b_r, "b3_f1": _f1(b_p, b_r),
        "groups": len(by_pred), "stories": len(by_gold),
        "sibling_pairs": len(pairs), "sibling_merged": len(merged),
        "sibling_merged_share": len(merged) / len(pairs) if pairs else 0.0,
        "merged_pairs": merged,
    }  # fmt: skip


def rule_alerts(pred: Prediction, stream: Stream, corpus: Corpus) -> dict[str, Any]:
    """Alerts with one per (rule, predicted story), against one per (rule, gold story)."""
    texts = [(a, f"{a['title']}\n{a['body']}") for _, a in stream]
    sent = ideal = own = 0
    for rule in corpus.rules:
        patterns = [phrase_pattern(p) for p in rule["any"]]
        fired: dict[str, str] = {}
        wanted: set[str] = set()
        for a, text in texts:
            if any(p.search(text) for p in patterns):
                wanted.add(a["story"])
                fired.setdefault(pred[a["id"]], a["story"])
        sent, ideal, own = sent + len(fired), ideal + len(wanted), own + len(wanted & set(fired.values()))
    return {
        "alerts": sent,
        "ideal": ideal,
        "alerts_per_ideal": sent / ideal if ideal else 0.0,
        "own_alert_share": own / ideal if ideal else 1.0,
    }


# --- baselines, implemented here as the README describes them ---------------------


def alone(stream: Stream) -> Prediction:
    """(a) every article its own story: what monitor does today."""
    return {a["id"]: a["id"] for _, a in stream}


def _head(a: Article, words: int = 300) -> list[str]:
    """Title words and the first ``words`` words of the body, lower-cased."""
    return _WORDS.findall(a["title"].lower()) + _WORDS.findall(a["body"].lower())[:words]


def shingles(stream: Stream, threshold: float) -> Prediction:
    """(c) word-3-shingles of title + 300 words; join the group of the earlier article
    with the highest exact Jaccard if it reaches ``threshold`` (a scan: baselines only)."""
    pred: Prediction = {}
    seen: list[tuple[str, set[tuple[str, ...]]]] = []
    for _, a in stream:
        w = _head(a)
        mine = {tuple(w[i : i + 3]) for i in range(len(w) - 2)}
        best, best_j = None, 0.0
        for other, theirs in seen:
            union = len(mine | theirs)
            j = len(mine & theirs) / union if union else 0.0
            if j > best_j:
                best, best_j = other, j
        pred[a["id"]] = pred[best] if best is not None and best_j >= threshold else a["id"]
        seen.append((a["id"], mine))
    return pred


def tfidf(stream: Stream, threshold: float) -> Prediction:
    """(d) tf-idf (idf over the replayed split itself) single pass: join the group whose
    centroid has the highest cosine if it reaches ``threshold`` (a scan: baselines only)."""
    docs = [(a["id"], Counter(_head(a))) for _, a in stream]
    df = Counter(w for _, c in docs for w in c)
    n = len(docs)
    pred: Prediction = {}
    groups: list[tuple[str, dict[str, float]]] = []
    for i, counts in docs:
        vec = _unit_vector({w: (1 + math.log(k)) * math.log(n / df[w]) for w, k in counts.items()})
        best, best_s = _best_centroid(vec, groups)
        if best is not None and best_s >= threshold:
            gid, centroid = groups[best]
            for w, x in vec.items():
                centroid[w] = centroid.get(w, 0.0) + x
            pred[i] = gid
        else:
            groups.append((i, dict(vec)))
            pred[i] = i
    return pred


def _unit_vector(v: dict[str, float]) -> dict[str, float]:
    length = math.sqrt(sum(x * x for x in v.values())) or 1.0
    return {w: x / length for w, x in v.items()}


def _best_centroid(
    vec: dict[str, float], groups: Sequence[tuple[str, dict[str, float]]]
) -> tuple[int | None, float]:
    best, best_s = None, 0.0
    for k, (_, centroid) in enumerate(groups):
        length = math.sqrt(sum(x * x for x in centroid.values())) or 1.0
        s = sum(x * centroid.get(w, 0.0) for w, x in vec.items()) / length
        if s > best_s:
            best, best_s = k, s
    return best, best_s


BASELINES: dict[str, Callable[[Stream], Prediction]] = {
    "(a) every article alone": alone,
    "(c) shingle Jaccard >= 0.1": lambda s: shingles(s, 0.1),
    "(d) tf-idf cosine >= 0.3": lambda s: tfidf(s, 0.3),
    "(d) tf-idf cosine >= 0.2": lambda s: tfidf(s, 0.2),
}
