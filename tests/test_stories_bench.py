"""The story benchmark's replay order and scores (bench/_stories_eval.py)."""

from __future__ import annotations

from bench import _stories_eval as ev
from bench._stories_speed import store_throughput
from tests.corpora import corpus


def test_replay_is_deterministic_and_dated_articles_keep_their_order():
    corp = ev.load(corpus("stories"))
    stream = ev.replay(corp, "dev")
    assert stream == ev.replay(corp, "dev")
    assert len(stream) == sum(a["split"] == "dev" for a in corp.articles)
    times = [t for t, _ in stream if t is not None]
    assert times == sorted(times)


def test_scores_of_the_gold_grouping_and_of_every_article_alone():
    corp = ev.load(corpus("stories"))
    stream = ev.replay(corp, "dev")
    gold = ev.score({a["id"]: a["story"] for _, a in stream}, stream, corp)
    assert gold["pw_f1"] == gold["b3_f1"] == 1.0 and gold["sibling_merged"] == 0
    alone = ev.score(ev.alone(stream), stream, corp)
    assert alone["pw_f1"] == 0.0 and alone["b3_p"] == 1.0
    topic = ev.score({a["id"]: a["topic"] for _, a in stream}, stream, corp)
    assert topic["sibling_merged_share"] > 0.9 and topic["pw_r"] == 1.0
    alerts = ev.rule_alerts({a["id"]: a["story"] for _, a in stream}, stream, corp)
    assert alerts["alerts"] == alerts["ideal"] and alerts["own_alert_share"] == 1.0


def test_the_cross_validation_folds_split_dev_by_topic_and_pool_their_counts():
    from bench._stories_fit import _topics
    from bench.stories import _pooled

    corp = ev.load(corpus("stories"))
    ones, threes = _topics(corp, 1), _topics(corp, 3)
    dev = {a["id"] for a in corp.articles if a["split"] == "dev"}
    assert {a["id"] for a in ones.articles} | {a["id"] for a in threes.articles} == dev
    assert not {a["topic"] for a in ones.articles} & {a["topic"] for a in threes.articles}
    rows = [
        {"sibling_merged": 1, "sibling_pairs": 10, "alerts": 60, "ideal": 50, "pw_f1": 0.8, "b3_f1": 0.9,
         "own_alert_share": 1.0},
        {"sibling_merged": 2, "sibling_pairs": 12, "alerts": 90, "ideal": 76, "pw_f1": 0.9, "b3_f1": 0.8,
         "own_alert_share": 0.98},
    ]  # fmt: skip
    pooled = _pooled(rows)
    assert (pooled["sibling_merged"], pooled["sibling_pairs"], pooled["alerts"], pooled["ideal"]) == (
        3,
        22,
        150,
        126,
    )
    assert round(pooled["pw_f1"], 3) == 0.85 and round(pooled["own_alert_share"], 3) == 0.99


def test_the_store_throughput_scenario_assigns_every_article_through_save_poll():
    done = store_throughput(60, timed=20)
    assert done["indexed"] == 60 and done["timed"] == 20
    assert 0 < done["stories"] <= 80 and done["postings"] >= done["stories"]
    assert done["assign_per_s"] > 0
